/**
 * The link to the home card system as it really fails, driven by the fault proxy on loopback
 * (test/fixtures/fault-proxy.ts) between HttpUpstream and the simulator: each failure is its own
 * error kind with its wire code and a message naming what was seen; the circuit breaker opens on
 * consecutive failures or a failed probe, short-circuits calls while open and closes by itself once
 * the protocol probe (digest checked) succeeds again; the verifier acts on it; certificate expiry.
 * No timed assertions: "at once" is asserted as "nothing reached the proxy".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { HttpUpstream, type UpstreamConfig } from '../src/protocol/http-upstream.ts';
import { METHOD_VERIFY, type VerifyBiz } from '../src/protocol/upstream.ts';
import { sealResponse } from '../src/protocol/envelope.ts';
import { newOutVerifyNo, outVerifyTime } from '../src/protocol/ids.ts';
import { EhcError } from '../src/errors.ts';
import { isLinkError, type UpstreamLinkError } from '../src/protocol/link-errors.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { startSimulator, DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEFAULT_LOCAL_EHCIN, DEFAULT_FOREIGN_EHCIN, type SimulatorHandle } from '../demo/simulator/server.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { startFaultProxy, type FaultProxy } from './fixtures/fault-proxy.ts';
import { MemoryOutbox } from './helpers/fixtures.ts';
import { tempDir } from './helpers/tmp.ts';
import { makePki, opensslMissing, type Pki } from './helpers/pki.ts';
import { needs } from './helpers/skip.ts';

const tmp = tempDir('ehc-link-');
const keyFile = path.join(tmp.dir, 'soft-card.keys.json');
const missing = opensslMissing();
const withPki = needs(missing && `TLS cases need openssl: ${missing}`);
let pki: Pki | undefined;
const open: Array<{ close(): Promise<void> | void }> = [];
const person = makePopulation()[3]!;
const id = { idType: person.idType, idNo: person.idNo };

function config(url: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    url,
    crossDomainUrl: url,
    appId: DEFAULT_APP_ID,
    appSecret: DEFAULT_APP_SECRET,
    termId: '3502A0001STMA0001',
    version: '1.0.0',
    timeoutMs: 400,
    connectTimeoutMs: 400,
    healthIntervalMs: 600_000,
    breakerFailures: 2,
    breakerRetryMs: 100,
    probeTimeoutMs: 400,
    insecure: url.startsWith('http:'),
    dialect: {},
    ...over,
  };
}

function upstream(cfg: UpstreamConfig, opts: ConstructorParameters<typeof HttpUpstream>[1] = { probe: false }): HttpUpstream {
  const u = new HttpUpstream(cfg, opts);
  open.push(u);
  return u;
}

async function setup(mode: FaultProxy['mode'] = 'pass', simOpts: Parameters<typeof startSimulator>[0] = {}) {
  const sim: SimulatorHandle = await startSimulator({ keyFile, ...simOpts });
  open.push(sim);
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: sim.port }, { mode });
  open.push(proxy);
  return { sim, proxy, url: proxy.url(sim.url), code: () => sim.cardSystems[0]!.issueCode(id) };
}

function biz(code: string): VerifyBiz {
  return { ehealth_code: code, treatment_code: '010101', operator_id: '001', operator_name: 'test', out_verify_no: newOutVerifyNo(), out_verify_time: outVerifyTime() };
}

async function failure(p: Promise<unknown>): Promise<EhcError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, EhcError);
    return err as EhcError;
  }
  throw new Error('expected a failure, got success');
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const kindOf = (e: EhcError) => (isLinkError(e) ? e.linkKind : 'none');

test.before(async () => {
  await SoftCard.open(keyFile, { ...DEFAULT_KEY_INDEXES });
  if (!missing) pki = makePki(tmp.dir);
});

test('pass mode: the proxy is transparent (positive control), delayed answers within the read timeout succeed', async () => {
  const s = await setup();
  const u = upstream(config(s.url));
  assert.is((await u.call(METHOD_VERIFY, biz(s.code()))).id_no, person.idNo);
  s.proxy.delayMs = 100;
  assert.is((await u.call(METHOD_VERIFY, biz(s.code()))).id_no, person.idNo);
  assert.is(u.link.linkState, 'closed');
});

test('black hole: read timeout 8001 that says what was seen; delayed answer past the read timeout is the same kind', async () => {
  const s = await setup();
  const u = upstream(config(s.url, { breakerFailures: 100 }));
  assert.is((await u.call(METHOD_VERIFY, biz(s.code()))).id_no, person.idNo); // a kept-alive connection exists now
  s.proxy.mode = 'blackhole';
  const e = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(e.code, '8001');
  assert.is(kindOf(e), 'read-timeout');
  assert.match(e.message, /sent the request; no answer within 400 ms/);
  s.proxy.mode = 'pass';
  s.proxy.delayMs = 1000;
  const late = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(kindOf(late), 'read-timeout');
});

test('reset → 8002 reset; slow bytes → read timeout naming the bytes that arrived', async () => {
  const s = await setup('reset');
  const u = upstream(config(s.url, { breakerFailures: 100 }));
  const reset = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(reset.code, '8002');
  assert.is(kindOf(reset), 'reset');
  assert.match(reset.message, /closed after the request was sent, before any byte of the answer \(ECONNRESET\)/);
  s.proxy.mode = 'slow';
  s.proxy.slowByteMs = 30;
  // a read timeout long enough for the first bytes to arrive even on a loaded machine (an answer of
  // ~1 KB at 30 ms a byte is still far from complete after 2 s); with 400 ms a slow simulator had not
  // begun to answer yet, and the message was the no-answer one
  const patient = upstream(config(s.url, { breakerFailures: 100, timeoutMs: 2000 }));
  const slow = await failure(patient.call(METHOD_VERIFY, biz(s.code())));
  assert.is(slow.code, '8001');
  assert.match(slow.message, /incomplete after 2000 ms: \d+ bytes arrived/);
});

withPki('TLS alert from the far end → tls kind (8004) naming the alert, no guessed cause', async () => {
  if (!pki) throw new Error('no PKI');
  const s = await setup('tls-fail');
  const t = upstream(config(s.url.replace('http:', 'https:'), { breakerFailures: 100, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
  const tlsErr = await failure(t.call(METHOD_VERIFY, biz(s.code())));
  assert.is(tlsErr.code, '8004');
  assert.is(kindOf(tlsErr), 'tls');
  assert.match(tlsErr.message, /handshake failure/i);
  assert.not.match(tlsErr.message, /\?/);
});

test('3003 storm and HTTP 429 are busy (3003, Retry-After kept) and do not open the breaker; 503 is http-status and does', async () => {
  const s = await setup('answer');
  const busy = JSON.stringify(sealResponse({ retCode: '3003', retMsg: '资源繁忙', appId: DEFAULT_APP_ID, method: METHOD_VERIFY, version: '1.0.0', secret: DEFAULT_APP_SECRET }));
  s.proxy.answer = { status: 200, body: busy };
  const u = upstream(config(s.url));
  for (let i = 0; i < 5; i++) {
    const e = await failure(u.call(METHOD_VERIFY, biz(s.code())));
    assert.is(e.code, '3003');
    assert.is(kindOf(e), 'busy');
  }
  assert.is(u.link.linkState, 'closed', 'a busy home system is a working link');
  s.proxy.answer = { status: 429, headers: { 'retry-after': '7' }, body: '' };
  const tooMany = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(tooMany.code, '3003');
  assert.is((tooMany as UpstreamLinkError).retryAfterMs, 7000);
  assert.is(u.link.linkState, 'closed');
  s.proxy.answer = { status: 503, headers: { 'retry-after': '2' }, body: '<html>maintenance</html>' };
  const unavailable = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(unavailable.code, '8002');
  assert.is(kindOf(unavailable), 'http-status');
  assert.is((unavailable as UpstreamLinkError).retryAfterMs, 2000);
  assert.match(unavailable.message, /HTTP 503.*maintenance/);
  await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(u.link.linkState, 'open', 'two consecutive 503s opened it (breakerFailures 2)');
});

test('breaker: N consecutive link failures open it; while open calls are refused without touching the link; a trial call closes it', async () => {
  const s = await setup('blackhole');
  const u = upstream(config(s.url, { breakerRetryMs: 300 }));
  await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(u.link.linkState, 'closed', 'one failure is not enough');
  await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(u.link.linkState, 'open');
  const seen = s.proxy.chunksIn;
  const fast = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(fast.code, '8004');
  assert.is(kindOf(fast), 'link-open');
  assert.match(fast.message, /not sent: the link .* is open since .* CST after: connected .* no answer within 400 ms/);
  assert.is(s.proxy.chunksIn, seen, 'nothing reached the link while open');
  assert.is(u.state.link.shortCircuited, 1);
  s.proxy.mode = 'pass';
  // after breakerRetryMs the next call is the half-open trial (this upstream runs no probe)
  await until(() => u.state.link.state === 'open' && Date.parse(u.state.link.since) + 300 <= Date.now(), 'retry time passed');
  assert.is((await u.call(METHOD_VERIFY, biz(s.code()))).id_no, person.idNo);
  assert.is(u.link.linkState, 'closed');
});

test('probe: a real protocol round trip (the home system answers 9001, digest checked), not a TCP connect', async () => {
  const s = await setup();
  const u = upstream(config(s.url));
  const up = await u.probe();
  assert.is(up.reachable, true);
  assert.is(up.link.state, 'closed');
  assert.is(s.sim.received().length, 0, 'the probe is not a transaction at the home system');
  s.proxy.mode = 'blackhole'; // TCP accepted, nothing answered: a TCP-connect probe would say "up" here
  const down = await u.probe();
  assert.is(down.reachable, false);
  assert.is(down.link.state, 'open', 'one failed probe opens the breaker');
  assert.match(down.lastError ?? '', /health probe: .* no complete answer within 400 ms/);
  // a wrong app secret: the answer's digest does not check → not a working link
  s.proxy.mode = 'pass';
  const wrong = upstream(config(s.url, { appSecret: 'X'.repeat(64) }));
  const bad = await wrong.probe();
  assert.is(bad.reachable, false);
  assert.is(bad.link.state, 'open');
  assert.match(bad.lastError ?? '', /health probe: .*(digest|1008)/);
});

test('link view: with probes on, the breaker opens on a black hole and closes by itself when the link returns; the verifier does not wait while open', async () => {
  const s = await setup();
  const log = memoryLogger();
  const u = upstream(config(s.url, { healthIntervalMs: 600_000 }), { logger: log });
  await until(() => u.state.phase === 'up', 'first probe');
  const soft = await SoftCard.open(keyFile, { ...DEFAULT_KEY_INDEXES });
  open.push(soft);
  const card = new ProfiledCard(soft, { ...DEFAULT_KEY_INDEXES });
  const outbox = new MemoryOutbox();
  const verifier = new RoutingVerifier({
    card,
    upstream: u,
    outbox,
    settings: { localEhcins: [DEFAULT_LOCAL_EHCIN], policy: 'upstream-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'd', operatorName: 'd', termId: '3502A0001STMA0001' },
  });
  assert.is((await verifier.verify({ ehealthCode: s.code() })).decided_by, 'upstream');
  s.proxy.mode = 'blackhole';
  // the first verification finds out the slow way (read timeout) and falls back; its failure triggers a probe
  assert.is((await verifier.verify({ ehealthCode: s.code() })).decided_by, 'offline-local');
  await until(() => u.link.linkState !== 'closed', 'breaker opened by the probe');
  const before = s.proxy.chunksIn;
  for (let i = 0; i < 20; i++) {
    const r = await verifier.verify({ ehealthCode: s.code() });
    assert.is(r.decided_by, 'offline-local');
  }
  const foreignCode = s.sim.cardSystems.find((c) => c.ehcin === DEFAULT_FOREIGN_EHCIN)!.issueCode(id);
  const foreign = await failure(verifier.verify({ ehealthCode: foreignCode }));
  assert.is(foreign.code, '8004');
  assert.is((await verifier.verify({ ehealthCode: foreignCode, defer: true })).decided_by, 'deferred');
  assert.ok(s.proxy.chunksIn - before <= 4, `verifications did not go to the link while open (only probes: ${s.proxy.chunksIn - before} chunks)`);
  assert.is(outbox.entries.filter((e) => e.kind === 'usage').length, 21, 'each offline-local verification queued its usage record');
  s.proxy.mode = 'pass';
  await until(() => u.link.linkState === 'closed', 'breaker closed by a probe');
  assert.is((await verifier.verify({ ehealthCode: s.code() })).decided_by, 'upstream');
  assert.ok(log.lines.some((l) => l.includes('link to the home card system is open')));
  assert.ok(log.lines.some((l) => l.includes('closed again')));
});

test('calls waiting when the breaker opens stop waiting at once (link-open, 8004), not at their own read timeout', async () => {
  const s = await setup();
  // calls never open it here (breakerFailures 100) and their read timeout is far away: only the probe opens it
  const u = upstream(config(s.url, { breakerFailures: 100, timeoutMs: 60_000, probeTimeoutMs: 300 }));
  assert.is((await u.call(METHOD_VERIFY, biz(s.code()))).id_no, person.idNo);
  s.proxy.mode = 'blackhole';
  const waiting = [failure(u.call(METHOD_VERIFY, biz(s.code()))), failure(u.call(METHOD_VERIFY, biz(s.code())))];
  await until(() => s.proxy.chunksIn > 0, 'the requests reached the black hole');
  const probe = await u.probe();
  assert.is(probe.link.state, 'open');
  for (const e of await Promise.all(waiting)) {
    assert.is(kindOf(e), 'link-open', e.message);
    assert.is(e.code, '8004');
    assert.match(e.message, /gave up after \d+ ms without an answer: the link .* opened meanwhile after: health probe: .* no complete answer within 300 ms/);
  }
  assert.is(u.state.link.lastFailure?.kind, 'read-timeout', 'the calls given up did not count as failures of their own');
});

test('a call waiting longer than probeTimeoutMs asks the probe: a black hole opens the breaker before the call\'s read timeout', async () => {
  const s = await setup();
  const u = upstream(config(s.url, { breakerFailures: 100, timeoutMs: 60_000, probeTimeoutMs: 300, healthIntervalMs: 600_000 }), {});
  await until(() => u.state.phase === 'up', 'first probe');
  s.proxy.mode = 'blackhole';
  const e = await failure(u.call(METHOD_VERIFY, biz(s.code())));
  assert.is(kindOf(e), 'link-open', e.message);
  assert.is(u.link.linkState === 'closed', false);
  assert.match(u.state.link.lastFailure?.message ?? '', /health probe/);
});

withPki('certificate life: expiring within certWarnDays warns in state and log; expired fails the probe with a clear error', async () => {
  if (!pki) throw new Error('no PKI');
  const sim = await startSimulator({ keyFile, tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  open.push(sim);
  const tlsCfg = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
  const fresh = upstream(config(sim.url, { tls: tlsCfg, certWarnDays: 0 }));
  const lives = fresh.certificates();
  assert.equal(lives.map((c) => c.which), ['client', 'ca']);
  assert.ok(lives.every((c) => c.status === 'ok'), JSON.stringify(lives));
  assert.is(fresh.state.warnings, undefined);
  // the test PKI lives two days: inside the default 30-day window
  assert.ok(upstream(config(sim.url, { tls: tlsCfg })).certificates().every((c) => c.status === 'expiring'));
  const clientEnd = Date.parse(lives[0]!.notAfter);
  const log = memoryLogger();
  const soon = upstream(config(sim.url, { tls: tlsCfg, certWarnDays: 30 }), { probe: false, logger: log, now: () => clientEnd - 10 * 86_400_000 - 1000 });
  const c = soon.certificates().find((x) => x.which === 'client')!;
  assert.is(c.status, 'expiring');
  assert.is(c.daysLeft, 10);
  assert.match(soon.state.warnings?.join('\n') ?? '', /client certificate .* expires on .* CST, in 10 days/);
  assert.ok(log.lines.some((l) => l.includes('expires on')), 'logged at start');
  const late = upstream(config(sim.url, { tls: tlsCfg }), { probe: false, logger: log, now: () => clientEnd + 1000 });
  const st = await late.probe();
  assert.is(st.reachable, false);
  assert.match(st.lastError ?? '', /client certificate .* expired on .* CST/);
  assert.is(st.link.state, 'open');
});

test.after(async () => {
  for (const o of open.reverse()) await o.close();
  tmp.cleanup();
});

test.run();
