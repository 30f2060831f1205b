import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { Replay, classify } from '../src/store/replay.ts';
import { EhcError } from '../src/errors.ts';
import type { UpstreamIdentity } from '../src/protocol/upstream.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { testCard } from './fixtures/test-card.ts';
import { entry } from './fixtures/entries.ts';
import { FakeUpstreamClient, startFakeUpstream, type FakeUpstream } from './fixtures/fake-upstream.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const dirs: string[] = [];
const fakes: FakeUpstream[] = [];
async function outbox() {
  const d = mkdtempSync(path.join(tmpdir(), 'ehc-replay-'));
  dirs.push(d);
  return SqliteOutbox.open({ file: path.join(d, 'o.sqlite'), card: await testCard(path.join(d, 'card.keys.json')), keys, limits: { maxRecords: 10_000, maxBytes: 1 << 28, maxAgeHours: 24 }, log: memoryLogger() });
}
async function fake() {
  const f = await startFakeUpstream();
  fakes.push(f);
  return f;
}
/** waits for a condition; the deadline only stops a hang, it is not a speed assertion */
async function until(cond: () => boolean, what: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('classify: 0000/3002 delivered, business rejections dead, network and busy retried', () => {
  assert.is(classify('0000'), 'delivered');
  assert.is(classify('3002'), 'delivered');
  for (const c of ['1009', '2001', '2002', '3001', '9001']) assert.is(classify(c), 'dead', c);
  for (const c of ['8001', '8002', '8004', '3003', '9003', '9999']) assert.is(classify(c), 'retry', c);
});

test('upstream down: records wait, the breaker probes with backoff, then all are delivered in order, unchanged', async () => {
  const up = await fake();
  await up.down();
  const ob = await outbox();
  for (let i = 0; i < 30; i++) await ob.append(entry(i));
  const log = memoryLogger();
  const replay = new Replay({ outbox: ob, upstream: new FakeUpstreamClient(up.url), log, batch: 8, backoff: { baseMs: 10, maxMs: 50 } }).start();
  await until(() => replay.status().probes >= 2, 'two failed probes');
  const s = replay.status();
  assert.is(s.depth, 30);
  assert.is(s.delivered, 0);
  assert.ok(['backoff', 'probing'].includes(s.state), s.state);
  assert.is(s.breaker, 'open');
  assert.ok(s.lastError && ['8004', '8002'].includes(s.lastError.code), JSON.stringify(s.lastError));
  await up.up();
  await until(() => replay.status().depth === 0, 'outbox drained');
  await replay.stop();
  assert.equal(up.order, Array.from({ length: 30 }, (_, i) => entry(i).biz.out_verify_no));
  assert.is(up.mismatches.length, 0);
  const first = JSON.parse(up.received.get(entry(3).biz.out_verify_no)!);
  assert.equal(first.biz, entry(3).biz);
  assert.is(first.termId, entry(3).termId);
  const done = replay.status();
  assert.is(done.delivered, 30);
  assert.is(done.breaker, 'closed');
  assert.is(done.state, 'stopped');
  assert.is(replay.metrics().ehc_edge_replay_delivered_total, 30);
  assert.ok(log.lines.some((l) => l.includes('upstream answers again')));
  await ob.close();
});

test('3002 counts as delivered; a business rejection becomes a dead letter with its reason; deferred answers are published and kept', async () => {
  const up = await fake();
  const ob = await outbox();
  // the home system already has #1 (an earlier send whose ack was lost in a crash)
  up.received.set(entry(1).biz.out_verify_no, JSON.stringify({ method: 'ehc.ehealthcode.verify', biz: entry(1).biz, termId: entry(1).termId }));
  up.rejects.set(entry(2).biz.out_verify_no, '2002');
  up.rejects.set(entry(4, 'deferred').biz.out_verify_no, '2001');
  for (const [i, kind] of [[1, 'usage'], [2, 'usage'], [3, 'deferred'], [4, 'deferred'], [5, 'usage']] as const) await ob.append(entry(i, kind));
  const published: [string, UpstreamIdentity | EhcError][] = [];
  const replay = new Replay({
    outbox: ob,
    upstream: new FakeUpstreamClient(up.url),
    log: memoryLogger(),
    onDeferredResult: (ovn, answer) => published.push([ovn, answer]),
  }).start();
  await until(() => replay.status().depth === 0, 'outbox drained');
  await replay.stop();
  const s = replay.status();
  assert.is(s.delivered, 3);
  assert.is(s.duplicates, 1);
  assert.is(s.deadLettered, 2);
  assert.is(s.dead, 2);
  const dead = ob.deadLetters();
  assert.equal(dead.map((d) => [d.outVerifyNo, d.retCode]), [[entry(2).biz.out_verify_no, '2002'], [entry(4).biz.out_verify_no, '2001']]);
  assert.match(dead[0]!.reason, /2002/);
  assert.is(up.hits.get(entry(2).biz.out_verify_no), 1, 'a business rejection is not retried');
  assert.is(published.length, 2);
  const [ok, rejected] = published;
  assert.is(ok![0], entry(3).biz.out_verify_no);
  assert.is((ok![1] as UpstreamIdentity).user_name, '王五');
  assert.instance(rejected![1], EhcError);
  assert.is((rejected![1] as EhcError).code, '2001');
  const kept = await ob.lookup(entry(3).biz.out_verify_no);
  assert.is(kept?.state, 'answered');
  if (kept?.state === 'answered') assert.is(kept.identity?.ehealth_card_id, `CARD-${entry(3).biz.out_verify_no}`);
  const keptRejection = await ob.lookup(entry(4).biz.out_verify_no);
  assert.is(keptRejection?.state === 'answered' && keptRejection.retCode, '2001');
  await ob.close();
});

test('a deferred answer is audited before it is kept or heard; when its audit fails, the identity is withheld (8007 kept and heard)', async () => {
  const up = await fake();
  const ob = await outbox();
  for (const i of [6, 7]) await ob.append(entry(i, 'deferred'));
  const published: [string, UpstreamIdentity | EhcError][] = [];
  const audited: Array<{ ovn: string; termId: string; user: unknown; kept: string | undefined; heard: number }> = [];
  const refuse = entry(7).biz.out_verify_no;
  const replay = new Replay({
    outbox: ob,
    upstream: new FakeUpstreamClient(up.url),
    log: memoryLogger(),
    onDeferredResult: (ovn, answer) => published.push([ovn, answer]),
    auditAnswer: async (answer, termId) => {
      // at this moment the answer is neither kept (GET /v1/verify/{ovn}) nor heard
      audited.push({ ovn: answer.outVerifyNo, termId, user: answer.identity?.user_name, kept: (await ob.lookup(answer.outVerifyNo))?.state, heard: published.length });
      if (answer.outVerifyNo === refuse) throw new EhcError('8007', 'audit trail cannot be written (disk full); the answer is withheld (audit.onFailure = refuse)');
    },
  }).start();
  await until(() => replay.status().depth === 0, 'outbox drained');
  await replay.stop();
  assert.equal(audited.map((a) => [a.ovn, a.termId, a.user, a.kept]), [
    [entry(6).biz.out_verify_no, entry(6).termId, '王五', 'pending'],
    [refuse, entry(7).termId, '王五', 'pending'],
  ]);
  assert.ok(audited.every((a, i) => a.heard <= i), 'heard only after its own audit');
  const kept = await ob.lookup(entry(6).biz.out_verify_no);
  assert.ok(kept?.state === 'answered' && kept.identity?.user_name === '王五');
  const withheld = await ob.lookup(refuse);
  assert.ok(withheld?.state === 'answered' && withheld.retCode === '8007' && withheld.identity === undefined, JSON.stringify(withheld));
  const heardRefused = published.find(([ovn]) => ovn === refuse)![1];
  assert.instance(heardRefused, EhcError);
  assert.is((heardRefused as EhcError).code, '8007');
  assert.is((published.find(([ovn]) => ovn === entry(6).biz.out_verify_no)![1] as UpstreamIdentity).user_name, '王五');
  await ob.close();
});

test('stop() waits for the record in flight and commits its ack; new appends wake an idle replay', async () => {
  const up = await fake();
  const ob = await outbox();
  const replay = new Replay({ outbox: ob, upstream: new FakeUpstreamClient(up.url), log: memoryLogger(), idlePollMs: 60_000 }).start();
  await until(() => replay.status().state === 'idle', 'idle');
  up.delayMs = 200;
  await ob.append(entry(1));
  await until(() => up.hits.size === 1, 'the record reached the upstream');
  await replay.stop();
  assert.is(ob.stats().depth, 0, 'the in-flight record was acked before stop resolved');
  assert.is(replay.status().delivered, 1);
  await ob.close();
});

test('foreground first: while busy() says the HIS port is saturated replay waits, at most maxYieldMs per batch', async () => {
  const up = await fake();
  const ob = await outbox();
  for (let i = 0; i < 6; i++) await ob.append(entry(i));
  let busy = true;
  const replay = new Replay({ outbox: ob, upstream: new FakeUpstreamClient(up.url), log: memoryLogger(), batch: 3, busy: () => busy, maxYieldMs: 60_000 }).start();
  try {
    await until(() => replay.status().state === 'yielding', 'replay yields to the busy port');
    await new Promise((r) => setTimeout(r, 300));
    assert.is(up.hits.size, 0, 'nothing sent while the port is busy');
    assert.is(replay.status().depth, 6);
    assert.is(replay.metrics().ehc_edge_replay_yields_total, 1);
    busy = false;
    await until(() => replay.status().depth === 0, 'drained once the port calms down');
  } finally {
    await replay.stop(); // also when an assertion failed, so the suite ends instead of replaying on
  }
  assert.equal(up.order, Array.from({ length: 6 }, (_, i) => entry(i).biz.out_verify_no));

  // a port that never calms down slows replay but cannot stop it: after maxYieldMs a batch goes anyway
  for (let i = 6; i < 12; i++) await ob.append(entry(i));
  const starved = new Replay({ outbox: ob, upstream: new FakeUpstreamClient(up.url), log: memoryLogger(), batch: 3, busy: () => true, maxYieldMs: 100 }).start();
  try {
    await until(() => starved.status().depth === 0, 'drained in spite of a port that is always busy');
    assert.ok(starved.status().yields >= 2, `yielded before each batch (${starved.status().yields})`);
  } finally {
    await starved.stop();
  }
  assert.equal(up.order.slice(6), Array.from({ length: 6 }, (_, i) => entry(i + 6).biz.out_verify_no));
  await ob.close();
});

test.after(async () => {
  for (const f of fakes) await f.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
