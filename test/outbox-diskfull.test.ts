import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { needs } from './helpers/skip.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { EhcError } from '../src/errors.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { testCard } from './fixtures/test-card.ts';
import { entry } from './fixtures/entries.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const limits = { maxRecords: 10_000_000, maxBytes: 1 << 30, maxAgeHours: 24 };
const mnt = mkdtempSync(path.join(tmpdir(), 'ehc-full-'));
let mounted = false;
let skipReason = '';
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'pipe' });
  mounted = true;
} catch (err) {
  skipReason = `cannot mount a 2 MB tmpfs (${String((err as { stderr?: Buffer }).stderr ?? err).trim() || 'mount failed'}); needs root or CAP_SYS_ADMIN`;
}

needs(mounted ? undefined : skipReason)('disk full: appends fail with a clear 8007, nothing acknowledged is lost, the file stays sound', async () => {
  const file = path.join(mnt, 'outbox.sqlite');
  const log = memoryLogger();
  const keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'ehc-full-keys-')), 'card.keys.json');
  const ob = SqliteOutbox.open({ file, card: await testCard(keyFile), keys, limits, log });
  const acked = new Set<string>();
  let failure: unknown;
  for (let round = 0; round < 500 && !failure; round++) {
    const batch = Array.from({ length: 32 }, (_, i) => entry(round * 32 + i));
    const results = await Promise.allSettled(batch.map((e) => ob.append(e)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') acked.add(batch[i]!.biz.out_verify_no);
      else failure ??= r.reason;
    });
  }
  assert.ok(failure, 'a 2 MB disk filled up');
  assert.instance(failure, EhcError);
  assert.is((failure as EhcError).code, '8007');
  assert.match((failure as EhcError).message, /disk full/);
  assert.ok(log.lines.some((l) => l.includes('outbox commit failed') && l.includes('8007')), 'the failure is logged');
  assert.ok(acked.size > 100, `only ${acked.size} records fit`);
  // one at a time, a few more may still fit into what the failed batch left; then each fails the same way
  let single: unknown;
  for (let i = 0; i < 1000 && !single; i++) {
    const e = entry(900_000 + i);
    await ob.append(e).then(
      () => acked.add(e.biz.out_verify_no),
      (err) => (single = err),
    );
  }
  assert.is((single as EhcError).code, '8007');
  assert.match((single as EhcError).message, /disk full/);
  await ob.close();

  const reopened = SqliteOutbox.open({ file, card: await testCard(keyFile), keys, limits, log });
  assert.is(reopened.integrityCheck(), 'ok');
  const stored = await reopened.peek(1_000_000);
  assert.is(stored.length, acked.size, 'exactly the acknowledged records are stored');
  for (const e of stored) assert.ok(acked.has(e.biz.out_verify_no));
  assert.is(reopened.stats().depth, acked.size);
  assert.is(reopened.stats().dead, 0);
  console.log(`  disk full after ${acked.size} records: ${(failure as EhcError).message}`);
  await reopened.close();
  rmSync(path.dirname(keyFile), { recursive: true, force: true });
});

test.after(() => {
  if (mounted) {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }); // a failed test may still hold the file open
    }
  }
  rmSync(mnt, { recursive: true, force: true });
});

test.run();
