/**
 * Pipelined, ordered replay and replay as a good citizen: a window of records in flight, answers
 * matched to records whatever order they come back in, 3002 delivered, Retry-After honoured, full
 * jitter, waiting for the shared link view (breaker) and the randomised start delay once it returns;
 * end to end through the fault proxy with HttpUpstream and the simulator. No timed assertions: the
 * schedule is read from status (nextAttemptAt) with the jitter's random source fixed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { SqliteOutbox } from '../src/store/sqlite-outbox.ts';
import { Replay } from '../src/store/replay.ts';
import { EhcError } from '../src/errors.ts';
import { UpstreamBusy, LinkOpen } from '../src/protocol/link-errors.ts';
import type { LinkView, Upstream, UpstreamIdentity, UpstreamMethod, VerifyBiz } from '../src/protocol/upstream.ts';
import { HttpUpstream } from '../src/protocol/http-upstream.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { startSimulator, DEFAULT_APP_ID, DEFAULT_APP_SECRET } from '../demo/simulator/server.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { testCard } from './fixtures/test-card.ts';
import { entry } from './fixtures/entries.ts';
import { startFaultProxy } from './fixtures/fault-proxy.ts';

const keys = { storage: DEFAULT_KEY_INDEXES.storage, mac: DEFAULT_KEY_INDEXES.mac };
const dirs: string[] = [];
async function outbox() {
  const d = mkdtempSync(path.join(tmpdir(), 'ehc-replay-pipe-'));
  dirs.push(d);
  return SqliteOutbox.open({ file: path.join(d, 'o.sqlite'), card: await testCard(path.join(d, 'card.keys.json')), keys, limits: { maxRecords: 10_000, maxBytes: 1 << 28, maxAgeHours: 24 }, log: memoryLogger() });
}
async function until(cond: () => boolean, what: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An in-memory home system: answers after a per-record delay (so answers come back out of order). */
class ScriptedUpstream implements Upstream {
  dispatched: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  seen = new Set<string>();
  /** ovn → error to throw once */
  failOnce = new Map<string, EhcError>();
  delay: (ovn: string) => number = () => 5;
  link?: LinkView & { set(state: LinkView['linkState']): void };

  async call(_m: UpstreamMethod, biz: VerifyBiz): Promise<UpstreamIdentity> {
    const ovn = biz.out_verify_no;
    this.dispatched.push(ovn);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delay(ovn)));
      const fail = this.failOnce.get(ovn);
      if (fail) {
        this.failOnce.delete(ovn);
        throw fail;
      }
      if (this.seen.has(ovn)) throw new EhcError('3002', 'duplicate');
      this.seen.add(ovn);
      return { ehealth_card_id: `CARD-${ovn}` };
    } finally {
      this.inFlight--;
    }
  }
  async health() {
    return { reachable: true, url: 'mem:' };
  }
  async close() {}
}

function withLink(u: ScriptedUpstream): ScriptedUpstream {
  const ev = new EventEmitter();
  let state: LinkView['linkState'] = 'closed';
  u.link = {
    get linkState() {
      return state;
    },
    selfProbing: true,
    onLinkChange(l) {
      ev.on('change', l);
      return () => void ev.off('change', l);
    },
    set(s) {
      state = s;
      ev.emit('change', s);
    },
  };
  return u;
}

test('window 8: up to 8 in flight, dispatched in outbox order, every answer matched to its record (deferred answers), 3002 delivered', async () => {
  const ob = await outbox();
  const n = 40;
  for (let i = 0; i < n; i++) await ob.append(entry(i, i % 5 === 0 ? 'deferred' : 'usage', 'PIPE'));
  const up = new ScriptedUpstream();
  up.delay = (ovn) => 2 + ((Number(ovn.slice(-2)) * 7) % 11); // answers come back out of order
  up.seen.add(entry(3, 'usage', 'PIPE').biz.out_verify_no); // the home system already had #3 (lost ack)
  const published = new Map<string, UpstreamIdentity | EhcError>();
  const replay = new Replay({ outbox: ob, upstream: up, log: memoryLogger(), window: 8, batch: 64, onDeferredResult: (ovn, a) => published.set(ovn, a) }).start();
  try {
    await until(() => replay.status().depth === 0, 'drained');
  } finally {
    await replay.stop();
  }
  assert.equal(up.dispatched, Array.from({ length: n }, (_, i) => entry(i, 'usage', 'PIPE').biz.out_verify_no), 'sent in seq order, each once');
  assert.ok(up.maxInFlight > 1 && up.maxInFlight <= 8, `in flight at most the window (${up.maxInFlight})`);
  const s = replay.status();
  assert.is(s.delivered, n);
  assert.is(s.duplicates, 1);
  assert.is(published.size, n / 5);
  for (const [ovn, a] of published) assert.is((a as UpstreamIdentity).ehealth_card_id, `CARD-${ovn}`, 'the answer of this record, not of a neighbour');
  for (let i = 0; i < n; i += 5) {
    const kept = await ob.lookup(entry(i, 'deferred', 'PIPE').biz.out_verify_no);
    assert.ok(kept?.state === 'answered' && kept.identity?.ehealth_card_id === `CARD-${entry(i, 'deferred', 'PIPE').biz.out_verify_no}`);
  }
  await ob.close();
});

test('the window reads on across batch boundaries: the next batch goes out while the last one is still in flight (no drain, commit, peek pause per batch)', async () => {
  const ob = await outbox();
  const n = 16;
  for (let i = 0; i < n; i++) await ob.append(entry(i, 'usage', 'EDGE'));
  const up = new ScriptedUpstream();
  up.delay = () => 1;
  // the home system holds its answer to record 0 until record 8 — the first of the next batch of 8 —
  // has been sent. A replay that waits for a whole batch before reading the next never sends record 8
  // (the hold is then let go after 3 s, so that replay fails the assert below instead of hanging)
  const head = entry(0, 'usage', 'EDGE').biz.out_verify_no;
  const firstOfNext = entry(8, 'usage', 'EDGE').biz.out_verify_no;
  let release: (by: string) => void = () => undefined;
  const released = new Promise<string>((r) => (release = r));
  const call = up.call.bind(up);
  const sentOrder: string[] = [];
  up.call = async (m: UpstreamMethod, biz: VerifyBiz) => {
    sentOrder.push(biz.out_verify_no);
    if (biz.out_verify_no === firstOfNext) release('record 8 sent');
    if (biz.out_verify_no === head) {
      const t = setTimeout(() => release('gave up'), 3000);
      await released;
      clearTimeout(t);
    }
    return call(m, biz);
  };
  const replay = new Replay({ outbox: ob, upstream: up, log: memoryLogger(), window: 4, batch: 8 }).start();
  try {
    await until(() => replay.status().depth === 0, 'drained');
  } finally {
    await replay.stop();
  }
  assert.is(await released, 'record 8 sent', 'the next batch went out while record 0 was still in flight');
  assert.equal(sentOrder, Array.from({ length: n }, (_, i) => entry(i, 'usage', 'EDGE').biz.out_verify_no), 'sent in seq order, each once');
  assert.ok(up.maxInFlight <= 4, `at most the window in flight (${up.maxInFlight})`);
  assert.is(replay.status().delivered, n);
  await ob.close();
});

test('a failure in the window: nothing new is sent, what was answered is acked, the next round starts at the oldest unacked; nothing delivered twice', async () => {
  const ob = await outbox();
  for (let i = 0; i < 20; i++) await ob.append(entry(i, 'usage', 'FAIL'));
  const up = withLink(new ScriptedUpstream());
  const failing = entry(5, 'usage', 'FAIL').biz.out_verify_no;
  up.failOnce.set(failing, new EhcError('8001', 'read timeout'));
  const replay = new Replay({ outbox: ob, upstream: up, log: memoryLogger(), window: 4, random: () => 0, backoff: { baseMs: 10, maxMs: 10 } }).start();
  try {
    await until(() => replay.status().depth === 0, 'drained');
  } finally {
    await replay.stop();
  }
  const sends = up.dispatched.filter((o) => o === failing).length;
  assert.is(sends, 2, 'the failed record was sent again');
  assert.is(new Set(up.dispatched).size, 20);
  assert.is(up.dispatched.length, 21, 'no record other than the failed one was sent twice');
  assert.is(replay.status().delivered, 20);
  assert.is(replay.status().duplicates, 0);
  const firstIndex = up.dispatched.indexOf(failing);
  assert.ok(up.dispatched.slice(firstIndex + 1).indexOf(failing) <= 3, 'the head was resent before any record more than window-1 behind it');
  await ob.close();
});

test('3003 with Retry-After: the next attempt is no earlier than the home system asked; full jitter otherwise; max rate paces sends', async () => {
  const ob = await outbox();
  for (let i = 0; i < 6; i++) await ob.append(entry(i, 'usage', 'BUSY'));
  const up = withLink(new ScriptedUpstream());
  up.failOnce.set(entry(0, 'usage', 'BUSY').biz.out_verify_no, new UpstreamBusy('home system answered 3003', 400));
  const replay = new Replay({ outbox: ob, upstream: up, log: memoryLogger(), window: 4, random: () => 0, backoff: { baseMs: 10, maxMs: 10 }, maxPerSecond: 1000 }).start();
  try {
    const failedAt = Date.now();
    await until(() => replay.status().state === 'backoff', 'backing off');
    const next = Date.parse(replay.status().nextAttemptAt!);
    assert.ok(next - failedAt >= 380, `waits the Retry-After (${next - failedAt} ms)`);
    assert.is(replay.status().lastError?.code, '3003');
    await until(() => replay.status().depth === 0, 'drained after the wait');
  } finally {
    await replay.stop();
  }
  await ob.close();
});

test('link view: replay waits while the breaker is open (sends nothing), then after a random start delay drains', async () => {
  const ob = await outbox();
  for (let i = 0; i < 5; i++) await ob.append(entry(i, 'usage', 'LINK'));
  const up = withLink(new ScriptedUpstream());
  up.link!.set('open');
  const replay = new Replay({ outbox: ob, upstream: up, log: memoryLogger(), window: 4, random: () => 0.5, startJitterMs: 600 }).start();
  try {
    await until(() => replay.status().state === 'link-down', 'waiting for the link');
    await new Promise((r) => setTimeout(r, 100));
    assert.is(up.dispatched.length, 0, 'nothing sent while the link is open');
    assert.is(replay.status().breaker, 'open');
    const closedAt = Date.now();
    up.link!.set('closed');
    await until(() => replay.status().state === 'start-delay', 'start delay');
    const next = Date.parse(replay.status().nextAttemptAt!);
    assert.ok(next - closedAt >= 250 && next - closedAt <= 400, `random()·startJitterMs = 300 ms (${next - closedAt})`);
    await until(() => replay.status().depth === 0, 'drained');
  } finally {
    await replay.stop();
  }
  assert.is(up.dispatched.length, 5);
  await ob.close();
});

test('end to end: HttpUpstream through a black-holed fault proxy: replay waits on the link; the link returns by itself and the backlog drains once each', async () => {
  const d = mkdtempSync(path.join(tmpdir(), 'ehc-replay-e2e-'));
  dirs.push(d);
  const person = makePopulation()[3]!;
  const sim = await startSimulator(); // the foreign card system only: its codes need no key file
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: sim.port });
  const upstream = new HttpUpstream(
    {
      url: proxy.url(sim.url),
      crossDomainUrl: proxy.url(sim.url),
      appId: DEFAULT_APP_ID,
      appSecret: DEFAULT_APP_SECRET,
      termId: '3502A0001STMA0001',
      version: '1.0.0',
      timeoutMs: 300,
      connectTimeoutMs: 300,
      healthIntervalMs: 600_000,
      probeTimeoutMs: 300,
      breakerFailures: 2,
      breakerRetryMs: 100,
      insecure: true,
      dialect: {},
    },
    { logger: memoryLogger() },
  );
  const ob = await outbox();
  const foreign = sim.cardSystems.at(-1)!;
  const codes: string[] = [];
  try {
    proxy.mode = 'blackhole';
    for (let i = 0; i < 12; i++) {
      const e = entry(i, 'usage', 'E2E');
      const code = foreign.issueCode({ idType: person.idType, idNo: person.idNo });
      codes.push(code);
      await ob.append({ ...e, biz: { ...e.biz, ehealth_code: code } });
    }
    const replay = new Replay({ outbox: ob, upstream, log: memoryLogger(), window: 4, random: () => 0, startJitterMs: 0 }).start();
    try {
      await until(() => replay.status().state === 'link-down', 'replay waits for the link');
      assert.is(sim.received().length, 0);
      proxy.mode = 'pass';
      await until(() => replay.status().depth === 0, 'drained once the link closed by itself');
    } finally {
      await replay.stop();
    }
    const got = sim.received().map((r) => r.out_verify_no);
    assert.is(new Set(got).size, 12, 'every record reached the home system');
    assert.is(replay.status().delivered, 12);
    assert.ok(!(await upstream.call('ehc.ehealthcode.verify', { ...entry(99, 'usage', 'E2E').biz, ehealth_code: codes[0]! }).then(() => false, (e: EhcError) => e instanceof LinkOpen)));
  } finally {
    await upstream.close();
    await ob.close();
    await proxy.close();
    await sim.close();
  }
});

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
