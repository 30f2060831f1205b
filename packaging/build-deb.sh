#!/usr/bin/env bash
# Builds packaging/dist/ehc-edge_<version>_<arch>.deb: the compiled JavaScript of the working tree
# (`npm run build` → dist/), its own Node.js runtime (the official linux binary of the version in
# packaging/node-runtime.version, from the npm registry's node-linux-<arch> package), production
# node_modules installed by `npm ci --omit=dev --ignore-scripts` in a staging dir, and every native
# addon compiled from source by node-gyp against that runtime's headers (--nodedir), for the target
# architecture (Debian's cross toolchain when it is not this machine's). Then lintian.
#
#   npm run package                         # version from package.json, this machine's architecture
#   EHC_DEB_ARCH=arm64 npm run package      # cross build (crossbuild-essential-arm64, libusb-1.0-0-dev:arm64)
#   EHC_DEB_VERSION=0.1.0+site2 npm run package
#   EHC_LINTIAN=0 npm run package           # skip lintian (not for releases)
#
# Needs: dpkg-dev (dpkg-deb, dpkg-shlibdeps), binutils (strip), file, lintian, npm, build-essential,
# python3 (node-gyp), libusb-1.0-0-dev (node-hid); for arm64 also crossbuild-essential-arm64,
# binutils-aarch64-linux-gnu and libusb-1.0-0-dev:arm64 (dpkg --add-architecture arm64).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

say() { printf '== %s\n' "$*"; }
die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps strip file npm node gzip python3 make; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install dpkg-dev binutils file nodejs npm python3 build-essential)"
done

name=ehc-edge
pkg_version="$(node -p "require('./package.json').version")"
version="${EHC_DEB_VERSION:-$pkg_version}"
host_arch="$(dpkg --print-architecture)"
arch="${EHC_DEB_ARCH:-$host_arch}"
case "$arch" in
  amd64) node_arch=x64; gnu=x86_64-linux-gnu ;;
  arm64) node_arch=arm64; gnu=aarch64-linux-gnu ;;
  *) die "EHC_DEB_ARCH=$arch: only amd64 and arm64 are built" ;;
esac
cross=""
if [ "$arch" != "$host_arch" ]; then
  cross="$gnu-"
  for tool in "${cross}gcc" "${cross}g++" "${cross}strip"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install crossbuild-essential-$arch)"
  done
  [ -f "/usr/lib/$gnu/pkgconfig/libusb-1.0.pc" ] || die "missing libusb-1.0-0-dev:$arch (dpkg --add-architecture $arch && apt-get update && apt-get install libusb-1.0-0-dev:$arch)"
fi
strip="${cross}strip"
build="$here/build/$arch"
stage="$build/stage"
app="$stage/usr/lib/$name"
dist="$here/dist"
deb="$dist/${name}_${version}_${arch}.deb"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

[ -f src/main.ts ] || die "src/main.ts is missing: nothing to run"

# ---- the runtime: one version pin (packaging/node-runtime.version), fetched once per version and
# architecture into packaging/.cache (packaging/fetch-runtime.sh)
node_version="$(tr -d ' \n' < "$here/node-runtime.version")"
runtime="$(bash "$here/fetch-runtime.sh" "$node_arch")" || die "the runtime could not be fetched (see above)"
file -b "$runtime/bin/node" | grep -q "$([ "$arch" = arm64 ] && echo aarch64 || echo x86-64)" || die "$runtime/bin/node is not a $arch binary"

say "staging $name $version ($arch, Node.js $node_version)"
rm -rf "$build"
mkdir -p "$app" "$dist"

# ---- the app: compiled JavaScript with source maps (npm run build; demo/ too: `ehc-edge codes` and the
# simulator, loaded by the appliance only when simulator.enabled), nothing TypeScript
say "npm run build (tsc → JavaScript with source maps)"
EHC_BUILD_OUT="$build/js" bash "$here/build-js.sh"
cp -a "$build/js/." "$app/"
cp package-lock.json "$app/"

nm="$app/node_modules"
# production node_modules depend only on the lock file, this script, the runtime and the architecture:
# reuse them from packaging/.cache when those match (EHC_DEB_CACHE=0 forces a fresh build)
cache_key="$(cat package.json package-lock.json "$0" | sha256sum | cut -c1-16)-node$node_version-$arch"
cache="$here/.cache/node_modules-$cache_key"
# node-gyp from the project's devDependencies, run by this machine's node, building for the target:
# headers and common.gypi from the runtime (--nodedir: nothing downloaded), the cross compiler and
# the target's multiarch pkg-config directory when cross building
gyp=(node "$root/node_modules/node-gyp/bin/node-gyp.js" rebuild --release "--nodedir=$runtime" "--arch=$node_arch" -j 2)
# npm's own nodedir (this machine's npmrc says nodedir=/usr, and `npm test` passes it on as
# npm_config_nodedir) would override --nodedir and build against the development Node's headers
gyp_env=(env -u npm_config_nodedir -u NPM_CONFIG_NODEDIR -u npm_config_target -u npm_config_runtime)
if [ -n "$cross" ]; then
  gyp_env=("${gyp_env[@]}" CC="${cross}gcc" CXX="${cross}g++" LINK="${cross}g++" AR="${cross}ar" RANLIB="${cross}ranlib" STRIP="${cross}strip"
    CC_host=gcc CXX_host=g++ PKG_CONFIG_LIBDIR="/usr/lib/$gnu/pkgconfig:/usr/share/pkgconfig")
fi
# the addons of the dependencies, each compiled from its own sources (no prebuilt binaries are shipped)
addons=(better-sqlite3 unix-dgram node-hid @serialport/bindings-cpp)
if [ "${EHC_DEB_CACHE:-1}" != 0 ] && [ -d "$cache" ]; then
  say "production node_modules from cache ${cache#"$root/"}"
  cp -a "$cache" "$nm"
else
  say "npm ci --omit=dev --ignore-scripts (production dependencies)"
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  for a in "${addons[@]}"; do
    [ -f "$nm/$a/binding.gyp" ] || die "$a has no binding.gyp"
    say "node-gyp: $a for linux-$node_arch against Node.js $node_version"
    (cd "$nm/$a" && rm -rf build prebuilds && "${gyp_env[@]}" "${gyp[@]}" >"$build/gyp-${a//\//_}.log" 2>&1) \
      || { tail -30 "$build/gyp-${a//\//_}.log" >&2; die "node-gyp rebuild of $a failed (log: $build/gyp-${a//\//_}.log)"; }
  done

  say "pruning node_modules"
  rm -rf "$nm/.bin" "$nm/.package-lock.json"
  # build intermediates and sources of native addons (the .node files stay)
  find "$nm" \( -path '*/build/Release/obj.target' -o -path '*/build/Release/obj' -o -path '*/build/Release/.deps' \
    -o -path '*/build/Release/test_extension.node' -o -name '*.a' -o -path '*/build/*.mk' -o -path '*/build/Makefile' \
    -o -path '*/build/config.gypi' -o -path '*/build/binding.Makefile' -o -path '*/build/node_gyp_bins' -o -path '*/build/Release/.forge-meta' \) -prune -exec rm -rf {} +
  rm -rf "$nm/better-sqlite3/deps" "$nm/better-sqlite3/src" "$nm/node-hid/hidapi" "$nm/node-hid/src" "$nm/unix-dgram/src" "$nm/@serialport/bindings-cpp/src"
  # any prebuilt binaries left inside npm packages (the addons above load build/Release first)
  find "$nm" -type d -name prebuilds -prune -exec rm -rf {} +
  # VCS and editor files
  find "$nm" -type f \( -name '.gitattributes' -o -name '.gitignore' -o -name '.gitmodules' -o -name '.prettierrc*' -o -name '.eslintignore' \) -delete
  # docs, tests, type declarations and source maps of dependencies are not needed at run time
  # (node-addon-api keeps its headers and .gyp: the firmware-bridge addon builds against them)
  find "$nm" \( -path "$nm/node-addon-api" -o -path "$nm/nan" \) -prune -o \( -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples -o -name docs -o -name .github \) -prune \
    -o -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.ts.map' \
    -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.editorconfig' -o -name 'Makefile' -o -name '*.gyp' -o -name '*.gypi' -o -name '*.cc' -o -name '*.c' -o -name '*.cpp' -o -name '*.h' \) \) \
    -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$here"/.cache/node_modules-*
  cp -a "$nm" "$cache"
fi
# no TypeScript toolchain in the package
for dev in tsx esbuild @esbuild typescript; do [ ! -e "$nm/$dev" ] || die "node_modules/$dev in the package: it must be a devDependency"; done

if [ -f firmware-bridge/binding.gyp ]; then
  say "node-gyp: the firmware-bridge addon (sdf_bridge.node)"
  cp -a firmware-bridge/binding.gyp firmware-bridge/src "$app/firmware-bridge/"
  (cd "$app/firmware-bridge" && "${gyp_env[@]}" "${gyp[@]}" >"$build/gyp-firmware-bridge.log" 2>&1) \
    || { tail -30 "$build/gyp-firmware-bridge.log" >&2; die "node-gyp rebuild of firmware-bridge failed"; }
  rm -rf "$app/firmware-bridge/src" "$app/firmware-bridge/binding.gyp"
fi
if [ -f firmware-bridge/softsdf/Makefile ]; then
  # the software SDF library (tests, and the booted test's card): built for the target beside the
  # package, not in it
  say "softsdf for $arch (packaging/build/$arch/softsdf; not shipped)"
  rm -rf "$build/softsdf" && cp -a firmware-bridge/softsdf "$build/softsdf" && rm -rf "$build/softsdf/build"
  mkdir -p "$build/src" && cp -a firmware-bridge/src/sdf.h "$build/src/"
  if [ -n "$cross" ]; then
    PKG_CONFIG_LIBDIR="/usr/lib/$gnu/pkgconfig:/usr/share/pkgconfig" make -s -C "$build/softsdf" CC="${cross}gcc" >"$build/softsdf.log" 2>&1 || printf '   softsdf not built (libssl-dev:%s?): see %s\n' "$arch" "$build/softsdf.log"
  else
    make -s -C "$build/softsdf" >"$build/softsdf.log" 2>&1 || printf '   softsdf not built (libssl-dev?): see %s\n' "$build/softsdf.log"
  fi
fi

# build intermediates of the app's own addons
find "$app" \( -path '*/build/Release/obj.target' -o -path '*/build/Release/.deps' -o -path '*/build/*.mk' -o -path '*/build/Makefile' \
  -o -path '*/build/config.gypi' -o -path '*/build/binding.Makefile' -o -path '*/build/node_gyp_bins' \) -prune -exec rm -rf {} +
find "$app" -type d -empty -delete

say "the runtime: Node.js $node_version (bin/node, stripped; its licence)"
install -D -m 0755 "$runtime/bin/node" "$app/runtime/bin/node"
"$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$app/runtime/bin/node"
install -m 0644 "$runtime/LICENSE" "$app/runtime/LICENSE"
"$app/runtime/bin/node" --version >/dev/null 2>&1 || [ -n "$cross" ] || die "the staged runtime does not run"

say "stripping native objects"
mapfile -t natives < <(find "$app" -type f \( -name '*.node' -o -name '*.so' -o -name '*.so.*' \) | sort)
for f in "${natives[@]}"; do
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
done
printf '   %s\n' "${natives[@]#"$stage"}"

say "system files"
install -D -m 0755 "$here/ehc-edge-daemon" "$app/bin/ehc-edge-daemon"
install -D -m 0755 "$here/ehc-edge" "$stage/usr/bin/ehc-edge"
install -D -m 0644 "$here/ehc-edge.service" "$stage/usr/lib/systemd/system/ehc-edge.service"
install -D -m 0644 "$here/ehc-edge.sysusers" "$stage/usr/lib/sysusers.d/ehc-edge.conf"
install -D -m 0644 "$here/ehc-edge.modules-load" "$stage/usr/lib/modules-load.d/ehc-edge.conf"
for rules in "$here"/udev/*.rules; do
  install -D -m 0644 "$rules" "$stage/usr/lib/udev/rules.d/$(basename "$rules")"
done
install -d -m 0750 "$stage/etc/ehc-edge"
install -m 0640 "$here/appliance.config.json" "$stage/etc/ehc-edge/appliance.config.json"
doc="$stage/usr/share/doc/$name"
install -D -m 0644 "$here/debian/copyright" "$doc/copyright"
install -m 0644 "$here/README.md" "$doc/README.md"
{
  printf '%s (%s) unstable; urgency=medium\n\n  * Build %s of ehc-edge.\n\n' "$name" "$version" "$version"
  printf ' -- ehc-edge developers <dev@ehc-edge.example.org>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -d "$stage/usr/share/man/man1"
gzip -9n < "$here/ehc-edge.1" > "$stage/usr/share/man/man1/ehc-edge.1.gz"
chmod 0644 "$stage/usr/share/man/man1/ehc-edge.1.gz"
install -D -m 0644 "$here/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/$name"
# fleet monitoring: Prometheus alerting rules, a scrape example and the Grafana dashboard (#18)
for f in "$here"/monitoring/*; do install -D -m 0644 "$f" "$stage/usr/share/ehc-edge/monitoring/$(basename "$f")"; done

say "normalising permissions"
find "$stage" -type d -exec chmod 0755 {} +
chmod 0750 "$stage/etc/ehc-edge"
find "$app" -type f -exec chmod 0644 {} +
chmod 0755 "$app/bin/ehc-edge-daemon" "$stage/usr/bin/ehc-edge"
for f in "${natives[@]}"; do chmod 0644 "$f"; done
# the only program: the runtime (the CLIs inside node_modules are not run on the box: no npm there)
chmod 0755 "$app/runtime/bin/node"

say "control"
shlibs="$(
  tmp="$(mktemp -d)"; mkdir -p "$tmp/debian"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > "$tmp/debian/control"
  exes=("-e$app/runtime/bin/node")
  for f in "${natives[@]}"; do exes+=("-e$f"); done
  # cross build: the target's libraries are looked up in its multiarch directories
  (cd "$tmp" && eval "$(dpkg-architecture -a"$arch" -s 2>/dev/null)" && dpkg-shlibdeps -O --warnings=0 "${exes[@]}" 2> >(grep -v 'should already be installed in their package' >&2) | sed -n 's/^shlibs:Depends=//p')
  rm -rf "$tmp"
)"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared library dependencies (is libusb-1.0-0 installed on the build machine?)"
installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
mkdir -p "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: ehc-edge developers <dev@ehc-edge.example.org>
Installed-Size: $installed_kb
Depends: systemd | systemd-standalone-sysusers | systemd-sysusers, init-system-helpers (>= 1.52)${shlibs:+, $shlibs}
Recommends: systemd-sysv, udev
Section: misc
Priority: optional
Homepage: https://ehc-edge.invalid/
Description: edge appliance for the national electronic health card
 Drives QR scanners (USB HID, CDC-ACM, RS-232) at registration desks and
 kiosks, verifies electronic health card QR codes locally with a GM/T 0018
 crypto card or at the home card system over the national protocol, keeps a
 durable outbox for offline operation and serves the hospital information
 system through an authenticated local HTTP API.
 .
 Runs as the systemd service ehc-edge.service under the system user
 ehc-edge; configuration in /etc/ehc-edge, state in /var/lib/ehc-edge.
EOF
printf '/etc/ehc-edge/appliance.config.json\n' > "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/debian/$s" "$stage/DEBIAN/$s"; done
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' > DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/md5sums"
grep '^Depends:' "$stage/DEBIAN/control"
# every ELF file is built for the target architecture
want_elf="$([ "$arch" = arm64 ] && echo 'ARM aarch64' || echo 'x86-64')"
while IFS= read -r -d '' f; do
  kind="$(file -b "$f")"
  case "$kind" in ELF*) printf '%s' "$kind" | grep -q "$want_elf" || die "${f#"$stage"} is not $want_elf: $kind" ;; esac
done < <(find "$stage" -type f -print0)
printf '   every ELF in the package is %s\n' "$want_elf"

say "dpkg-deb --build"
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
ls -l "$deb"

if [ "${EHC_LINTIAN:-1}" != 0 ]; then
  command -v lintian >/dev/null 2>&1 || die "lintian is not installed (apt-get install lintian), or set EHC_LINTIAN=0 for a development build"
  say "lintian"
  # errors fail the build; warnings and info are listed (README explains the ones that remain)
  lintian --tag-display-limit 0 --display-info "$deb" | tee "$build/lintian.txt" || true
  if grep -q '^E:' "$build/lintian.txt"; then die "lintian reported errors (see above)"; fi
  printf 'lintian: %s error(s), %s warning(s), %s info\n' \
    "$(grep -c '^E:' "$build/lintian.txt" || true)" "$(grep -c '^W:' "$build/lintian.txt" || true)" "$(grep -c '^I:' "$build/lintian.txt" || true)"
fi
say "built $deb"
