#!/bin/bash
# Cold start to READY, paired with farm-bench (packaging/README.md, "Size and cold start"):
#   after  (A): the package's bundled Node.js running the compiled app of this machine's build
#               (packaging/build/<arch>/stage/usr/lib/ehc-edge, as ehc-edge-daemon starts it)
#   before (B): this machine's node through tsx (`node --import tsx src/main.ts`) with a fresh TMPDIR
#               each run (the unit's PrivateTmp=yes gives tsx a cold compile cache at every start)
# Each run: spawn → the "ehc-edge ready" log line (right after READY=1), soft card, upstream down
# (nothing listens at the shipped loopback address), state dir made by the warm-up run.
# Needs `npm run package` first (the staging tree) and farm-bench.
#   usage: packaging/bench/cold-start.sh [RUNS]      (default 5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
stage="$repo/packaging/build/$(dpkg --print-architecture)/stage/usr/lib/ehc-edge"
[ -x "$stage/runtime/bin/node" ] && [ -f "$stage/src/main.js" ] || { echo "cold-start: no $stage: run npm run package first" >&2; exit 2; }
command -v farm-bench >/dev/null || { echo "cold-start: farm-bench not found" >&2; exit 2; }
work=$(mktemp -d /tmp/ehc-cold-start-XXXXXX)
trap 'rm -rf "$work"' EXIT
# the shipped config with its placeholders replaced, a state dir per entry, an ephemeral HIS port
for who in before after; do
  node -e '
    const [src, out, state] = process.argv.slice(1);
    const c = JSON.parse(require("fs").readFileSync(src, "utf8"));
    c.stateDir = state;
    c.his.listen = "127.0.0.1:0";
    c.his.apiKeys = [require("crypto").randomBytes(32).toString("hex")];
    c.upstream.appSecret = require("crypto").randomBytes(32).toString("hex").toUpperCase();
    c.systemd = { watchdog: false };
    c.scannerAutoDetect = false;
    require("fs").writeFileSync(out, JSON.stringify(c, null, 2));
  ' "$repo/packaging/appliance.config.json" "$work/$who.json" "$work/state-$who"
done
cd "$repo"
echo "after: $("$stage/runtime/bin/node" --version) on the compiled app; before: $(node --version) through tsx; $runs pairs" >&2
before="sh -c 'd=\$(mktemp -d); TMPDIR=\$d node packaging/bench/cold-start.mjs -- node --import tsx src/main.ts --config $work/before.json; s=\$?; rm -rf \$d; exit \$s'"
farm-bench -n "$runs" --timeout 900 --vs "$before" \
  -- node packaging/bench/cold-start.mjs -- "$stage/runtime/bin/node" --max-semi-space-size=32 --enable-source-maps "$stage/src/main.js" --config "$work/after.json"
