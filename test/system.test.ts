/**
 * The booted-system test of the Debian package (test/system/boot.ts): builds the .deb, boots Debian 12
 * and Debian 13 (amd64; EHC_SYSTEM_MATRIX chooses, `debian12-arm64` is the emulated one) with systemd
 * as PID 1 under systemd-nspawn, installs, verifies, kills, upgrades, backs up and restores, purges.
 * `npm test` runs it whenever the machine can (root, debootstrap, systemd-nspawn, nsenter, dpkg-deb,
 * lintian — `.ci/run` installs them); otherwise it prints what is missing. It takes minutes (about 4
 * with a cached root, 10–13 cold): `EHC_SYSTEM_TEST=0 npm test` leaves it out on purpose.
 * Run it alone with `npm run test:system`; its output goes to test-output/system-test-<system>.log.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NAME = `the .deb installs, runs, restarts, upgrades, restores a backup and purges on booted ${process.env.EHC_SYSTEM_MATRIX ?? 'debian12-amd64,debian13-amd64'}`;

function whyNot(): string | undefined {
  if (process.env.EHC_SYSTEM_TEST === '0') return 'EHC_SYSTEM_TEST=0';
  if (process.getuid?.() !== 0) return 'not root (debootstrap and systemd-nspawn need root)';
  const missing = ['debootstrap', 'systemd-nspawn', 'nsenter', 'dpkg-deb', 'lintian'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) return `missing ${missing.join(', ')} (apt-get install debootstrap systemd-container util-linux dpkg-dev lintian; .ci/run does)`;
  return undefined;
}

const reason = whyNot();
if (reason === undefined) {
  test(NAME, () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/system/boot.ts'], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'], timeout: 75 * 60_000 });
    assert.is(r.status, 0, 'test/system/boot.ts failed: see test-output/system-test-*.log');
  });
} else {
  console.log(`system test skipped: ${reason}; run it with \`npm run test:system\` on a machine that can`);
  test.skip(NAME, () => {});
}

test.run();
