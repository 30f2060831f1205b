#!/usr/bin/env bash
# The package's Node.js runtime, fetched once per version and architecture into packaging/.cache/runtime
# from the npm registry's node-linux-<arch> package (npm checks its integrity). One version pin:
# packaging/node-runtime.version. Prints the runtime's folder (it has bin/node and include/node).
#   bash packaging/fetch-runtime.sh x64|arm64
# Used by build-deb.sh, and by test/his-upgrade.test.ts to run the HIS port under the package's runtime.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
die() { printf 'fetch-runtime: %s\n' "$*" >&2; exit 1; }
node_arch="${1:-x64}"
[[ "$node_arch" == x64 || "$node_arch" == arm64 ]] || die "architecture '$node_arch' is not x64 or arm64"
node_version="$(tr -d ' \n' < "$here/node-runtime.version")"
[[ "$node_version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "packaging/node-runtime.version: '$node_version' is not a version (e.g. 24.22.3)"
runtimes="$here/.cache/runtime"
runtime="$runtimes/node-v$node_version-linux-$node_arch"
if [ ! -x "$runtime/bin/node" ]; then
  printf '== fetching the runtime node-linux-%s@%s (npm registry; integrity checked by npm)\n' "$node_arch" "$node_version" >&2
  mkdir -p "$runtimes"
  tmp="$(mktemp -d "$runtimes/fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-$node_arch@$node_version" >/dev/null) || die "npm pack node-linux-$node_arch@$node_version failed (is the npm registry reachable?)"
  tar -xzf "$tmp/node-linux-$node_arch-$node_version.tgz" -C "$tmp"
  [ -x "$tmp/package/bin/node" ] && [ -f "$tmp/package/include/node/node_api.h" ] || die "node-linux-$node_arch@$node_version has no bin/node or include/node"
  rm -rf "$runtime"
  mv "$tmp/package" "$runtime"
fi
printf '%s\n' "$runtime"
