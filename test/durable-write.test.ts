import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFileDurably, createFileDurablySync, replaceFileDurably, replaceFileDurablySync } from '../src/platform/durable-write.ts';
import { AuditTrail } from '../src/ops/audit.ts';
import { UsageStats } from '../src/ops/stats.ts';
import { openStateStore } from '../src/store/state.ts';
import { macCard } from './helpers/mac-card.ts';

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'ehc-durable-'));
}
const mode = (f: string) => statSync(f).mode & 0o777;

test('replaceFileDurably: new file 0600, replaced whole, no temp file left behind', async () => {
  const dir = tmp();
  const f = path.join(dir, 'doc.json');
  await replaceFileDurably(f, 'one\n');
  assert.is(readFileSync(f, 'utf8'), 'one\n');
  assert.is(mode(f), 0o600);
  await Promise.all([replaceFileDurably(f, 'two\n'), replaceFileDurably(f, 'three\n')]);
  assert.ok(['two\n', 'three\n'].includes(readFileSync(f, 'utf8')));
  replaceFileDurablySync(f, Buffer.from('four\n'));
  assert.is(readFileSync(f, 'utf8'), 'four\n');
  assert.equal(readdirSync(dir), ['doc.json']);
});

test('replaceFileDurably: a failed rename leaves the old file and no temp', async () => {
  const dir = tmp();
  const f = path.join(dir, 'sub');
  writeFileSync(path.join(dir, 'keep'), 'x');
  // renaming a file over a non-empty directory fails
  const { mkdirSync } = await import('node:fs');
  mkdirSync(f);
  writeFileSync(path.join(f, 'inside'), 'y');
  try {
    await replaceFileDurably(f, 'data');
    assert.unreachable('rename over a directory must fail');
  } catch (err) {
    assert.instance(err, Error);
    assert.not.instance(err, assert.Assertion);
  }
  assert.equal(readdirSync(dir).sort(), ['keep', 'sub']);
});

test('createFileDurably never replaces an existing file', async () => {
  const dir = tmp();
  const f = path.join(dir, 'key');
  await createFileDurably(f, 'secret');
  assert.is(mode(f), 0o600);
  try {
    await createFileDurably(f, 'other');
    assert.unreachable();
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'EEXIST');
  }
  try {
    createFileDurablySync(f, 'other');
    assert.unreachable();
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'EEXIST');
  }
  assert.is(readFileSync(f, 'utf8'), 'secret');
});

test('state files are created 0600: audit day file and head, usage counters, state.json', async () => {
  const dir = tmp();
  const card = macCard();
  const trail = await AuditTrail.open({ dir: path.join(dir, 'audit'), card, macKey: card.index });
  await trail.append({ kind: 'admin', action: 'test' });
  await trail.close();
  for (const f of readdirSync(path.join(dir, 'audit'))) assert.is(mode(path.join(dir, 'audit', f)), 0o600, f);
  assert.ok(readdirSync(path.join(dir, 'audit')).includes('head.json'));
  const stats = await UsageStats.open({ file: path.join(dir, 'stats', 'usage.json'), site: { orgCode: '123456789' }, defaultScene: '010101' } as never);
  stats.recordVerification({ decided_by: 'local', out_verify_time: '20261201120000' } as never);
  await stats.close();
  assert.is(mode(path.join(dir, 'stats', 'usage.json')), 0o600);
  assert.is(mode(path.join(dir, 'stats')), 0o700);
  const store = await openStateStore(dir);
  store.data.terminals.x = { stm: '3502A0001STMA0001', allocatedAt: new Date().toISOString() };
  await store.write();
  assert.is(mode(path.join(dir, 'state.json')), 0o600);
});

test.run();
