#!/usr/bin/env bash
# npm run build: the compiled JavaScript the package runs (no TypeScript compiler at run time).
# tsc (tsconfig.build.json: same options as the typecheck, emits ES2022 modules with source maps and
# rewrites relative `.ts` imports to `.js`) compiles src/, drivers/, firmware-bridge/{index.ts,lib/}
# tools/ and demo/ into dist/ keeping the tree, then the files those read at run time beside their code
# (the status page's assets, package.json for the version) are copied next to them. dist/ runs with
# the project's node_modules (`node dist/src/main.js`) or, in the package, with its own.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${EHC_BUILD_OUT:-$root/dist}"
rm -rf "$out"
node "$root/node_modules/typescript/bin/tsc" -p tsconfig.build.json --outDir "$out"
# run-time assets: tracked non-TypeScript files under the compiled folders, except docs and build inputs
git ls-files -z -- src drivers tools demo firmware-bridge/lib 2>/dev/null \
  | while IFS= read -r -d '' f; do
      case "$f" in *.ts|*.md) continue ;; esac
      [ -f "$f" ] && printf '%s\0' "$f"
    done | tar --null -T - -cf - | tar -xf - -C "$out"
for data in dialects; do [ -d "$data" ] && cp -a "$data" "$out/"; done
cp package.json "$out/package.json"
# the entry points' `#!` lines name tsx; the compiled ones run with the runtime given by their launcher
find "$out" -name '*.js' -exec grep -l -m1 '^#!' {} + 2>/dev/null | while IFS= read -r f; do sed -i '1s/^#!.*$//' "$f"; done
printf 'build: %s (%s files)\n' "${out#"$root/"}" "$(find "$out" -type f -name '*.js' | wc -l)"
