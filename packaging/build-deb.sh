#!/usr/bin/env bash
# Builds packaging/dist/ehc-edge_<version>_<arch>.deb from the working tree (tracked and untracked,
# not ignored files), with production node_modules installed by `npm ci --omit=dev` in a staging dir
# (native addons compiled there for this machine's architecture), then runs lintian on it.
#
#   npm run package                         # version from package.json
#   EHC_DEB_VERSION=0.1.0+site2 npm run package
#   EHC_LINTIAN=0 npm run package           # skip lintian (not for releases)
#
# Needs: dpkg-dev (dpkg-deb, dpkg-shlibdeps), binutils (strip), lintian, npm, a C/C++ toolchain for
# addons without a prebuilt binary in their npm package (build-essential).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

say() { printf '== %s\n' "$*"; }
die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps strip file npm node gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install dpkg-dev binutils file nodejs npm)"
done

name=ehc-edge
pkg_version="$(node -p "require('./package.json').version")"
version="${EHC_DEB_VERSION:-$pkg_version}"
arch="$(dpkg --print-architecture)"
build="$here/build"
stage="$build/stage"
app="$stage/usr/lib/$name"
dist="$here/dist"
deb="$dist/${name}_${version}_${arch}.deb"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

[ -f src/main.ts ] || [ -n "${EHC_PACKAGE_STANDIN:-}" ] || die "src/main.ts is missing: nothing to run"

say "staging $name $version ($arch)"
rm -rf "$build"
mkdir -p "$app" "$dist"

# the app: what a clean clone has (git ls-files), limited to what runs on the box
app_paths=(package.json package-lock.json src drivers firmware-bridge tools demo) # demo: `ehc-edge codes` and the simulator; the appliance loads it only when simulator.enabled
existing=()
for p in "${app_paths[@]}"; do [ -e "$p" ] && existing+=("$p"); done
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard -- "${existing[@]}" \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$app"
else
  tar -cf - --exclude=node_modules --exclude=build "${existing[@]}" | tar -xf - -C "$app"
fi
if [ -n "${EHC_PACKAGE_STANDIN:-}" ]; then
  # development only: a stand-in entry while src/main.ts is not written yet
  say "WARNING: packaging the stand-in entry $EHC_PACKAGE_STANDIN as src/main.ts"
  install -D -m 0644 "$EHC_PACKAGE_STANDIN" "$app/src/main.ts"
fi

nm="$app/node_modules"
node_arch="$(node -p process.arch)"
# production node_modules depend only on the lock file, this script, node's ABI and the architecture: reuse them
# from packaging/.cache when those match (EHC_DEB_CACHE=0 forces a fresh npm ci)
cache_key="$(cat package.json package-lock.json "$0" | sha256sum | cut -c1-16)-$(node -p 'process.versions.modules')-$arch"
cache="$here/.cache/node_modules-$cache_key"
if [ "${EHC_DEB_CACHE:-1}" != 0 ] && [ -d "$cache" ]; then
  say "production node_modules from cache ${cache#"$root/"}"
  cp -a "$cache" "$nm"
else
  say "npm ci --omit=dev (production dependencies, native addons built for $arch)"
  (cd "$app" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)

  say "pruning node_modules"
  rm -rf "$nm/.bin" "$nm/.package-lock.json"
  # build intermediates and sources of native addons (the .node files stay)
  find "$app" \( -path '*/build/Release/obj.target' -o -path '*/build/Release/obj' -o -path '*/build/Release/.deps' \
    -o -path '*/build/Release/test_extension.node' -o -name '*.a' -o -path '*/build/*.mk' -o -path '*/build/Makefile' \
    -o -path '*/build/config.gypi' -o -path '*/build/binding.Makefile' -o -path '*/build/node_gyp_bins' \) -prune -exec rm -rf {} +
  rm -rf "$nm/better-sqlite3/deps" "$nm/better-sqlite3/src" "$nm/node-hid/hidapi" "$nm/node-hid/src" "$nm/unix-dgram/src"
  # prebuilt binaries for other platforms (the ones shipped inside npm packages)
  find "$nm" -type d -path '*/prebuilds/*' -prune ! -name "*linux-$node_arch*" ! -name "linux-$node_arch" -exec rm -rf {} +
  # Debian is glibc: drop musl builds
  find "$nm" \( -path '*/prebuilds/*musl*' \) -prune -exec rm -rf {} +
  # esbuild's CLI copy (a hard link to @esbuild/<platform>/bin/esbuild); its JS API, which tsx uses,
  # runs the platform package's binary
  rm -f "$nm/esbuild/bin/esbuild"
  # VCS and editor files
  find "$nm" -type f \( -name '.gitattributes' -o -name '.gitignore' -o -name '.gitmodules' -o -name '.prettierrc*' -o -name '.eslintignore' \) -delete
  # docs, tests, type declarations and source maps of dependencies are not needed at run time
  # (node-addon-api and nan keep their headers and .gyp: the firmware-bridge addon builds against them)
  find "$nm" \( -path "$nm/node-addon-api" -o -path "$nm/nan" \) -prune -o \( -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples -o -name docs -o -name .github \) -prune \
    -o -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.ts.map' \
    -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.editorconfig' -o -name 'Makefile' -o -name '*.gyp' -o -name '*.gypi' -o -name '*.cc' -o -name '*.h' \) \) \
    -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$here/.cache"
  mkdir -p "$here/.cache"
  cp -a "$nm" "$cache"
fi

if [ -f "$app/firmware-bridge/binding.gyp" ]; then
  say "building the firmware-bridge addon (firmware-bridge/build.ts: node-gyp with the local node headers)"
  (cd "$app" && node --import tsx --input-type=module -e "
    const m = await import('./firmware-bridge/build.ts');
    const r = m.buildAddon(true);
    if (!r.ok) { console.error(r.why); process.exit(1); }
    console.log('   ' + m.ADDON_PATH);")
  # the software SDF library and the C sources are for tests and building only
  rm -rf "$app/firmware-bridge/softsdf" "$app/firmware-bridge/src" "$app/firmware-bridge/binding.gyp" "$app/firmware-bridge/build.ts"
fi

# build intermediates of the app's own addons
find "$app" \( -path '*/build/Release/obj.target' -o -path '*/build/Release/.deps' -o -path '*/build/*.mk' -o -path '*/build/Makefile' \
  -o -path '*/build/config.gypi' \) -prune -exec rm -rf {} +
# the app's own .ts entry points run through /usr/bin/ehc-edge (node --import tsx), not their #! line
find "$app" -path "$nm" -prune -o -type f -name '*.ts' -exec grep -l -m1 '^#!' {} + 2>/dev/null | while IFS= read -r f; do
  head -c2 "$f" | grep -q '#!' && sed -i '1s|^#!.*$|// (#! line removed in the package: /usr/bin/ehc-edge runs this file)|' "$f"
done
# developer notes of the app's folders: the operator docs go to /usr/share/doc/ehc-edge
find "$app" -path "$nm" -prune -o -type f -name '*.md' -exec rm -f {} +
find "$app" -type d -empty -delete

say "stripping native objects"
mapfile -t natives < <(find "$app" -type f \( -name '*.node' -o -name '*.so' -o -name '*.so.*' \) | sort)
for f in "${natives[@]}"; do
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
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
# executables that packages run by path (esbuild's binary, used by tsx), and scripts with a #! line
find "$nm" -type f -path '*/@esbuild/*/bin/*' -exec chmod 0755 {} +
find "$nm" -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.cjs' \) -exec grep -l -m1 '^#!' {} + 2>/dev/null | while IFS= read -r f; do
  head -c2 "$f" | grep -q '#!' && chmod 0755 "$f"
done

say "control"
shlibs="$(
  tmp="$(mktemp -d)"; mkdir -p "$tmp/debian"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > "$tmp/debian/control"
  exes=()
  for f in "${natives[@]}"; do exes+=("-e$f"); done
  find "$nm" -type f -path '*/@esbuild/*/bin/*' -print0 | while IFS= read -r -d '' f; do file -b "$f" | grep -q ELF && printf '%s\n' "$f"; done > "$tmp/elf"
  while IFS= read -r f; do exes+=("-e$f"); done < "$tmp/elf"
  (cd "$tmp" && dpkg-shlibdeps -O --warnings=0 "${exes[@]}" | sed -n 's/^shlibs:Depends=//p')
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
Depends: nodejs (>= 20), systemd | systemd-standalone-sysusers | systemd-sysusers, init-system-helpers (>= 1.52)${shlibs:+, $shlibs}
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
