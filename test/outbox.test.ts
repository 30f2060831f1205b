import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteOutbox, type OutboxLimits } from '../src/store/sqlite-outbox.ts';
import { pkcs7Pad, pkcs7Unpad } from '../src/platform/pkcs7.ts';
import { EhcError } from '../src/errors.ts';
import { entry } from './fixtures/entries.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { testCard } from './fixtures/test-card.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const roomy: OutboxLimits = { maxRecords: 1_000_000, maxBytes: 1 << 30, maxAgeHours: 720 };
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'ehc-outbox-'));
  dirs.push(d);
  return d;
}
const keyDir = tmp();
const KEYS = path.join(keyDir, 'card.keys.json');
async function open(file: string, limits = roomy, keyFile = KEYS) {
  return SqliteOutbox.open({ file, card: await testCard(keyFile), keys, limits, log: memoryLogger() });
}
test('PKCS#7 pads to whole blocks and round-trips; bad padding is refused (null)', () => {
  for (const n of [0, 1, 15, 16, 17, 31]) {
    const data = Buffer.alloc(n, 7);
    const padded = pkcs7Pad(data);
    assert.is(padded.length % 16, 0);
    assert.ok(padded.length > n);
    assert.equal(pkcs7Unpad(padded), data);
  }
  const bad = Buffer.alloc(16, 0);
  assert.is(pkcs7Unpad(bad), null);
  assert.is(pkcs7Unpad(Buffer.alloc(15, 1)), null, 'not whole blocks');
});

test('append returns increasing seqs; peek gives them back in order with the same payload; ack removes', async () => {
  const file = path.join(tmp(), 'o.sqlite');
  const ob = await open(file);
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) seqs.push(await ob.append(entry(i)));
  assert.equal(seqs, [...seqs].sort((a, b) => a - b));
  const got = await ob.peek(10);
  assert.equal(got.map((e) => e.biz.out_verify_no), [0, 1, 2, 3, 4].map((i) => entry(i).biz.out_verify_no));
  assert.equal(got[2]!.biz, entry(2).biz);
  assert.is(ob.stats().depth, 5);
  await ob.ack(got[0]!.seq, { status: 'delivered', retCode: '0000' });
  await ob.ack(got[1]!.seq, { status: 'dead', retCode: '2002', reason: '二维码非法' });
  const s = ob.stats();
  assert.is(s.depth, 3);
  assert.is(s.dead, 1);
  assert.is(s.full, false);
  assert.equal(ob.deadLetters().map((d) => [d.outVerifyNo, d.retCode, d.reason]), [[entry(1).biz.out_verify_no, '2002', '二维码非法']]);
  await ob.close();
  // survives a reopen
  const again = await open(file);
  assert.equal((await again.peek(10)).map((e) => e.biz.out_verify_no), [2, 3, 4].map((i) => entry(i).biz.out_verify_no));
  await again.close();
});

test('concurrent appends share one transaction (group commit) and keep call order', async () => {
  const ob = await open(path.join(tmp(), 'o.sqlite'));
  const seqs = await Promise.all(Array.from({ length: 64 }, (_, i) => ob.append(entry(i))));
  assert.equal(seqs, [...seqs].sort((a, b) => a - b), 'seq follows call order');
  assert.ok(ob.counters.commits <= 2, `64 appends took ${ob.counters.commits} commits`);
  assert.is(ob.counters.appended, 64);
  await ob.close();
});

test('personal data is not in the file in clear, and a tampered record becomes a dead letter (9003)', async () => {
  const file = path.join(tmp(), 'o.sqlite');
  const ob = await open(file);
  await ob.append(entry(1));
  await ob.append(entry(2));
  await ob.close();
  for (const f of [file, file + '-wal'].filter(existsSync)) {
    const raw = readFileSync(f);
    assert.not.ok(raw.includes(Buffer.from('PATIENTSECRET')), `${f} holds the code in clear`);
    assert.not.ok(raw.includes(Buffer.from('张三丰')), `${f} holds the name in clear`);
  }
  const db = new Database(file);
  db.prepare("UPDATE outbox SET body = randomblob(length(body)) WHERE out_verify_no = 'OVN0000000001'").run();
  db.close();
  const again = await open(file);
  const got = await again.peek(10);
  assert.equal(got.map((e) => e.biz.out_verify_no), ['OVN0000000002']);
  const dead = again.deadLetters();
  assert.is(dead.length, 1);
  assert.is(dead[0]!.retCode, '9003');
  assert.match(dead[0]!.reason, /HMAC-SM3/);
  await again.close();
});

test('a card with other keys is refused with 8008 and the records stay untouched', async () => {
  const file = path.join(tmp(), 'o.sqlite');
  const ob = await open(file);
  await ob.append(entry(1));
  await ob.close();
  const other = await open(file, roomy, path.join(keyDir, 'another.keys.json'));
  const err = await other.peek(10).catch((e) => e);
  assert.is(err.code, '8008');
  assert.match(err.message, /keys are not the ones/);
  assert.is(other.stats().depth, 1);
  assert.is(other.stats().dead, 0);
  await other.close();
});

test('full by count, bytes or age: new records refused with 3003, nothing dropped, full in stats', async () => {
  const ob = await open(path.join(tmp(), 'o.sqlite'), { ...roomy, maxRecords: 3 });
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => ob.append(entry(i))));
  assert.equal(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
  const err = (results[3] as PromiseRejectedResult).reason;
  assert.instance(err, EhcError);
  assert.is(err.code, '3003');
  assert.match(err.message, /maxRecords/);
  const s = ob.stats();
  assert.is(s.full, true);
  assert.match(s.fullReason!, /maxRecords/);
  assert.is(s.depth, 3);
  assert.is(ob.counters.rejectedFull, 2);
  // draining makes room again
  const [head] = await ob.peek(1);
  await ob.ack(head!.seq, { status: 'delivered', retCode: '0000' });
  await ob.append(entry(6));
  await ob.close();

  const small = await open(path.join(tmp(), 'o.sqlite'), { ...roomy, maxBytes: 4096 });
  let stored = 0;
  let refusal: unknown;
  for (let i = 0; i < 100 && !refusal; i++) {
    try {
      await small.append(entry(i));
      stored++;
    } catch (e) {
      refusal = e;
    }
  }
  assert.ok(stored > 0 && stored < 100);
  assert.is((refusal as EhcError).code, '3003');
  assert.match((refusal as EhcError).message, /maxBytes/);
  assert.ok(small.stats().bytes <= 4096);
  assert.is(small.stats().depth, stored);
  await small.close();

  const aged = await open(path.join(tmp(), 'o.sqlite'), { ...roomy, maxAgeHours: 1 });
  await aged.append({ ...entry(1), createdAt: new Date(Date.now() - 2 * 3600_000).toISOString() });
  const ageErr = await aged.append(entry(2)).catch((e) => e);
  assert.is(ageErr.code, '3003');
  assert.match(ageErr.message, /maxAgeHours/);
  assert.ok(aged.stats().oldestAgeSeconds! >= 7199);
  await aged.close();
});

test('deferred answers are stored with the ack and found by out_verify_no; pending before', async () => {
  const ob = await open(path.join(tmp(), 'o.sqlite'));
  const e = entry(7, 'deferred');
  const seq = await ob.append(e);
  const pending = await ob.lookup(e.biz.out_verify_no);
  assert.is(pending?.state, 'pending');
  assert.is(await ob.lookup('nope'), null);
  await ob.ack(seq, { status: 'delivered', retCode: '0000' }, {
    outVerifyNo: e.biz.out_verify_no,
    retCode: '0000',
    retMsg: 'ok',
    identity: { user_name: '李四', id_no: '440101199001011234' },
    answeredAt: new Date().toISOString(),
  });
  const answered = await ob.lookup(e.biz.out_verify_no);
  assert.is(answered?.state, 'answered');
  if (answered?.state === 'answered') assert.is(answered.identity?.user_name, '李四');
  assert.is(ob.stats().depth, 0);
  await ob.close();
});

test('dead letters can be retried: back at the tail with the same payload', async () => {
  const ob = await open(path.join(tmp(), 'o.sqlite'));
  await ob.append(entry(1));
  await ob.append(entry(2));
  const [first] = await ob.peek(1);
  await ob.ack(first!.seq, { status: 'dead', retCode: '1009', reason: 'terminal unknown' });
  assert.equal(await ob.deadPayload(first!.seq).then((p) => p?.biz), entry(1).biz);
  assert.is(ob.retryDead([first!.seq, 999]), 1);
  const all = await ob.peek(10);
  assert.equal(all.map((x) => x.biz.out_verify_no), ['OVN0000000002', 'OVN0000000001']);
  assert.equal(all[1]!.biz, entry(1).biz);
  assert.is(ob.stats().dead, 0);
  await ob.close();
});

test('appends after close are refused, and close commits what was queued', async () => {
  const file = path.join(tmp(), 'o.sqlite');
  const ob = await open(file);
  const p = ob.append(entry(1));
  await ob.close();
  assert.ok((await p) > 0);
  const err = await ob.append(entry(2)).catch((e) => e);
  assert.is(err.code, '8007');
  const again = await open(file);
  assert.is(again.stats().depth, 1);
  await again.close();
});

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
