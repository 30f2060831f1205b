/**
 * The booted-system test of the Debian package (test/system/boot.ts) needs root, debootstrap,
 * systemd-nspawn and several minutes, so `npm test` runs it only with EHC_SYSTEM_TEST=1.
 * Run it directly with `npm run test:system`; its output is kept in packaging/system-test.log.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

if (process.env.EHC_SYSTEM_TEST === '1') {
  test('the .deb installs, runs, restarts, upgrades and purges on a booted Debian 13', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/system/boot.ts'], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'], timeout: 40 * 60_000 });
    assert.is(r.status, 0, 'test/system/boot.ts failed: see packaging/system-test.log');
  });
} else {
  console.log('system test skipped: set EHC_SYSTEM_TEST=1 (as root, with debootstrap and systemd-container) or run `npm run test:system`');
  test.skip('the .deb installs, runs, restarts, upgrades and purges on a booted Debian 13', () => {});
}

test.run();
