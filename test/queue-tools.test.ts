import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { exportDead, inspect, retryDead } from '../tools/queue.ts';
import { testCard } from './fixtures/test-card.ts';
import { entry } from './fixtures/entries.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const limits = { maxRecords: 100_000, maxBytes: 1 << 28, maxAgeHours: 24 };
const dir = mkdtempSync(path.join(tmpdir(), 'ehc-queue-'));

async function withDead(file: string) {
  const ob = SqliteOutbox.open({ file, card: await testCard(path.join(dir, 'card.keys.json')), keys, limits, log: memoryLogger() });
  for (let i = 0; i < 6; i++) await ob.append(entry(i));
  const recs = await ob.peek(6);
  await Promise.all(recs.slice(0, 4).map((r, i) => ob.ack(r.seq, { status: 'dead', retCode: i % 2 ? '2001' : '2002', reason: `rejected ${i}` })));
  return ob;
}

function collect(stream: PassThrough): () => string[] {
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return () => chunks.join('').split('\n').filter(Boolean);
}

test('inspect counts depth, dead letters by code and oldest age', async () => {
  const ob = await withDead(path.join(dir, 'a.sqlite'));
  const info = inspect(ob);
  assert.is(info.depth, 2);
  assert.is(info.dead, 4);
  assert.equal(info.deadByCode, { '2001': 2, '2002': 2 });
  assert.ok(info.oldestAgeSeconds !== null);
  assert.ok(info.oldestDeadAt);
  await ob.close();
});

test('export writes one JSON line per dead letter; payload is masked unless asked otherwise', async () => {
  const ob = await withDead(path.join(dir, 'b.sqlite'));
  const meta = new PassThrough();
  const metaLines = collect(meta);
  assert.is(await exportDead(ob, meta), 4);
  const rows = metaLines().map((l) => JSON.parse(l));
  assert.equal(rows.map((r) => r.retCode), ['2002', '2001', '2002', '2001']);
  assert.not.ok(metaLines().join('').includes('张三丰'));
  const withPayload = new PassThrough();
  const payloadLines = collect(withPayload);
  const progress: number[] = [];
  await exportDead(ob, withPayload, { payload: true, onProgress: (d) => progress.push(d) });
  const first = JSON.parse(payloadLines()[0]!);
  assert.is(first.payload.biz.out_verify_no, entry(0).biz.out_verify_no);
  assert.is(first.payload.biz.operator_name, '张*丰');
  assert.not.ok(payloadLines().join('').includes('PATIENTSECRET'));
  assert.equal(progress, [4]);
  const clear = new PassThrough();
  const clearLines = collect(clear);
  await exportDead(ob, clear, { payload: true, unmasked: true });
  assert.equal(JSON.parse(clearLines()[0]!).payload.biz, entry(0).biz);
  await ob.close();
});

test('retry moves dead letters back to the tail; the CLI shows status and retries all', async () => {
  const file = path.join(dir, 'c.sqlite');
  const ob = await withDead(file);
  const [firstDead] = ob.deadLetters();
  assert.is(retryDead(ob, [firstDead!.seq]), 1);
  assert.is(ob.stats().dead, 3);
  assert.is(ob.stats().depth, 3);
  await ob.close();
  const cli = (...args: string[]) =>
    execFileSync(process.execPath, ['--import', 'tsx', path.resolve('tools/queue.ts'), ...args, '--db', file, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const status = JSON.parse(cli('status'));
  assert.is(status.depth, 3);
  assert.is(status.dead, 3);
  assert.equal(JSON.parse(cli('retry', '--all')), { moved: 3 });
  const reopened = SqliteOutbox.open({ file, card: await testCard(path.join(dir, 'card.keys.json')), keys, limits });
  assert.is(inspect(reopened).depth, 6);
  assert.is(inspect(reopened).dead, 0);
  const order = (await reopened.peek(10)).map((e) => e.biz.out_verify_no);
  assert.equal(order, [4, 5, 0, 1, 2, 3].map((i) => entry(i).biz.out_verify_no));
  await reopened.close();
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
