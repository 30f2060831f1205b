/**
 * The link to the home card system as it really fails (issue #14), end to end: a real appliance
 * process (bench/fixtures/appliance-server.ts, HIS port over HTTP) talking mutual TLS to the demo
 * home-card-system simulator through the fault proxy (test/fixtures/fault-proxy.ts), which adds
 * BENCH_UPSTREAM_RTT_MS (30) to every round trip, as a VPN does. The simulator and the proxy run in
 * this process, so the home system's side is read directly (every call it received, by out_verify_no).
 * The appliance runs `verify.policy: upstream-first` with the shipped link defaults (read timeout 3 s
 * as the issue's user had it, connect timeout 3 s, breaker 3 failures / 1 s, probe 1 s every 5 s).
 *
 *   (b) black hole (the proxy accepts TCP and never answers): DESKS desks verify local codes one
 *       after another from the moment the link goes; time until /v1/status says the breaker is open
 *       (goal ≤ 5 s); p50/p99 of the local verifications begun before it opened; then OPEN_N (100)
 *       consecutive local verifications (goal: all offline-local, p99 ≤ 50 ms); foreign codes
 *       (8004 at once, and `defer` → deferred); then more local verifications to build a backlog.
 *   (c) link back (pass, RTT added): time until a desk's verification is decided by `upstream` again
 *       (goal ≤ 5 s) and until status says closed; replay's start delay (random 0..START_JITTER_MS)
 *       and its rate over RATE_SECONDS on the home system's side against replayMaxPerSecond (RATE).
 *   (a) the appliance restarted on the rest of the backlog with replayWindow 1, then 16 (rate
 *       unlimited, no start delay): records/s the home system received, W1_N and W16_N records each,
 *       counted after the first 2 × window (whose connections are still being opened) (goal: 16 ≥ 10 × 1). Then the whole backlog drains, and the home system's log is checked:
 *       every backlog record arrived, none as a second transaction (no code under two out_verify_no;
 *       a repeat of the same out_verify_no is answered 3002 and counted as a resend).
 * BENCH_QUICK=1 makes every count small (a smoke run of ~1 min); each count has its own variable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { startSimulator, DEFAULT_FOREIGN_EHCIN, DEFAULT_LOCAL_EHCIN } from '../demo/simulator/server.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { startFaultProxy } from '../test/fixtures/fault-proxy.ts';
import { makePki, opensslMissing } from '../test/helpers/pki.ts';
import { APPLIANCE_NODE_FLAGS, benchConfig, processCpuMs, runIfMain, startChild, type Child } from './lib.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const say = (line: string) => process.stderr.write(line + '\n');
const quick = process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, small: number) => Number(process.env[name] ?? (quick ? small : full));

const RTT_MS = num('BENCH_UPSTREAM_RTT_MS', 30, 30);
const DESKS = num('BENCH_UPSTREAM_DESKS', 4, 2);
const OPEN_N = num('BENCH_UPSTREAM_OPEN_N', 100, 100);
const FOREIGN_N = num('BENCH_UPSTREAM_FOREIGN_N', 20, 5);
const RATE = num('BENCH_UPSTREAM_RATE', 50, 50);
const RATE_SECONDS = num('BENCH_UPSTREAM_RATE_SECONDS', 10, 3);
const START_JITTER_MS = num('BENCH_UPSTREAM_START_JITTER_MS', 3000, 1000);
const W1_N = num('BENCH_UPSTREAM_W1_N', 300, 60);
const W16_N = num('BENCH_UPSTREAM_W16_N', 3000, 400);
const PEOPLE = 500;
const AUTH = { authorization: 'Bearer demo-his-key-change-me-0001', 'content-type': 'application/json' };

interface Verdict {
  ms: number;
  status: number;
  decided_by?: string;
  ret_code?: string;
  out_verify_no?: string;
  startedAt: number;
}

function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!.toFixed(1);
}
const summary = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: xs.length ? +Math.max(...xs).toFixed(1) : null });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function verify(url: string, code: string, defer = false): Promise<Verdict> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/verify`, { method: 'POST', headers: AUTH, body: JSON.stringify({ ehealth_code: code, ...(defer ? { defer: true } : {}) }) });
  const body = (await res.json()) as Record<string, string>;
  return { ms: performance.now() - t0, status: res.status, decided_by: body.decided_by, ret_code: body.ret_code, out_verify_no: body.out_verify_no, startedAt };
}

async function status(url: string): Promise<{ link: string; depth: number; delivered: number; dead: number; state: string }> {
  const s = (await (await fetch(`${url}/v1/status`, { headers: AUTH })).json()) as any;
  return { link: s.upstream?.link?.state ?? 'unknown', depth: s.outbox?.depth ?? -1, delivered: s.outbox?.delivered ?? 0, dead: s.outbox?.dead ?? 0, state: s.outbox?.state ?? '?' };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await sleep(everyMs);
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const missing = opensslMissing();
  if (missing) throw new Error(`the upstream bench speaks mutual TLS and needs ${missing}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-upstream-bench-'));
  const pki = makePki(dir);
  const stateDir = path.join(dir, 'state');
  const keyFile = path.join(stateDir, 'soft-card.keys.json');
  await (await SoftCard.open(keyFile, { ...DEFAULT_KEY_INDEXES })).close(); // the key file both sides share
  const people = makePopulation(PEOPLE);
  const sim = await startSimulator({ keyFile, population: people, tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: sim.port }, { delayMs: RTT_MS });
  const local = sim.cardSystems.find((c) => c.ehcin === DEFAULT_LOCAL_EHCIN)!;
  const foreign = sim.cardSystems.find((c) => c.ehcin === DEFAULT_FOREIGN_EHCIN)!;
  let k = 0;
  const expiresAt = new Date(Date.now() + 6 * 3600_000); // still valid when the backlog reaches the home system
  // every code distinct (its expiry a second apart), so the home system's log can be read per scan
  const issued = new Set<string>();
  const issue = (system: typeof local) => {
    const p = people[k % people.length]!;
    const code = system.issueCode({ idType: p.idType, idNo: p.idNo }, { expiresAt: new Date(expiresAt.getTime() + k++ * 1000) });
    if (issued.has(code)) throw new Error('bench: a code was issued twice');
    issued.add(code);
    return code;
  };
  const localCode = () => issue(local);
  const foreignCode = () => issue(foreign);
  /** out_verify_no → code of every record the appliance queued (offline-local usage, deferred) */
  const backlog = new Map<string, string>();
  const note = (v: Verdict, code: string) => {
    if ((v.decided_by === 'offline-local' || v.decided_by === 'deferred') && v.out_verify_no) backlog.set(v.out_verify_no, code);
  };

  const start = (window: number, maxPerSecond: number, startJitterMs: number): Promise<Child<{ url: string }>> => {
    const cfg = benchConfig((doc) => {
      doc.stateDir = stateDir;
      doc.simulator.enabled = false;
      doc.upstream.url = proxy.url(sim.url);
      delete doc.upstream.insecure;
      doc.upstream.tls = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
      doc.verify.policy = 'upstream-first';
      doc.outbox = { ...(doc.outbox ?? {}), replayWindow: window, replayMaxPerSecond: maxPerSecond, replayStartJitterMs: startJitterMs };
    });
    configDirs.push(cfg.dir);
    return startChild<{ url: string }>(path.join(here, 'fixtures/appliance-server.ts'), [cfg.file], APPLIANCE_NODE_FLAGS);
  };
  const configDirs: string[] = [];

  let app: Child<{ url: string }> | undefined;
  try {
    // ---- link up: a baseline through the proxy (RTT added)
    app = await start(16, RATE, START_JITTER_MS);
    let url = app.info.url;
    await until('link closed at start', async () => ((await status(url)).link === 'closed' ? true : undefined), 15_000);
    const up: number[] = [];
    for (let i = 0; i < 20; i++) {
      const v = await verify(url, localCode());
      if (v.decided_by !== 'upstream') throw new Error(`link up: expected decided_by upstream, got ${JSON.stringify(v)}`);
      if (i >= 5) up.push(v.ms);
    }
    say(`link up (+${RTT_MS} ms RTT): local verifications decided upstream p50 ${pct(up, 50)} ms p99 ${pct(up, 99)} ms`);

    // ---- (b) black hole
    proxy.mode = 'blackhole';
    const holeAt = Date.now();
    let openedAt: number | undefined;
    const statusMs: number[] = [];
    const watcher = (async () => {
      while (openedAt === undefined && Date.now() - holeAt < 30_000) {
        const t = performance.now();
        const st = await status(url);
        statusMs.push(performance.now() - t);
        if (st.link !== 'closed') openedAt = Date.now();
        else await sleep(25);
      }
    })();
    const beforeOpen: Verdict[] = [];
    await Promise.all(
      Array.from({ length: DESKS }, async () => {
        while (openedAt === undefined && Date.now() - holeAt < 30_000) {
          const code = localCode();
          const v = await verify(url, code);
          note(v, code);
          if (openedAt === undefined || v.startedAt < openedAt) beforeOpen.push(v);
        }
      }),
    );
    await watcher;
    if (openedAt === undefined) throw new Error('black hole: the breaker did not open within 30 s');
    const timeToOpenMs = openedAt - holeAt;
    if (process.env.BENCH_UPSTREAM_DEBUG) say(`status calls while closed: ${statusMs.map(Math.round).join(' ')}; verdicts ${beforeOpen.map((v) => `${v.startedAt - holeAt}+${Math.round(v.ms)}`).join(' ')}`);
    say(`black hole: breaker open after ${timeToOpenMs} ms; ${beforeOpen.length} local verifications begun before: ${JSON.stringify(summary(beforeOpen.map((v) => v.ms)))}`);
    const afterOpen: Verdict[] = [];
    for (let i = 0; i < OPEN_N; i++) {
      const code = localCode();
      const v = await verify(url, code);
      note(v, code);
      afterOpen.push(v);
    }
    const openDecided = countBy(afterOpen.map((v) => v.decided_by ?? `error ${v.ret_code}`));
    const openMs = afterOpen.map((v) => v.ms);
    say(`open: ${OPEN_N} consecutive local verifications ${JSON.stringify(openDecided)} ${JSON.stringify(summary(openMs))}, over 50 ms: ${openMs.filter((m) => m > 50).map((m) => Math.round(m)).join(' ') || 'none'}`);
    const foreignNow: Verdict[] = [];
    const foreignDeferred: Verdict[] = [];
    for (let i = 0; i < FOREIGN_N; i++) {
      foreignNow.push(await verify(url, foreignCode()));
      const code = foreignCode();
      const d = await verify(url, code, true);
      note(d, code);
      foreignDeferred.push(d);
    }
    say(`open: foreign codes ${JSON.stringify(countBy(foreignNow.map((v) => v.ret_code ?? v.decided_by ?? '?')))} ${JSON.stringify(summary(foreignNow.map((v) => v.ms)))}; with defer ${JSON.stringify(countBy(foreignDeferred.map((v) => v.decided_by ?? v.ret_code ?? '?')))} ${JSON.stringify(summary(foreignDeferred.map((v) => v.ms)))}`);
    // more of the backlog an outage leaves: what (c) and (a) drain
    const want = Math.ceil(RATE * RATE_SECONDS * 1.5) + W1_N + W16_N + 200;
    const fillStarted = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (backlog.size < want) {
          const code = localCode();
          const v = await verify(url, code);
          if (v.decided_by !== 'offline-local') throw new Error(`backlog: expected offline-local, got ${JSON.stringify(v)}`);
          note(v, code);
        }
      }),
    );
    say(`backlog of ${backlog.size} records queued in ${((Date.now() - fillStarted) / 1000).toFixed(1)} s (offline-local)`);
    const backlogAtLinkBack = (await status(url)).depth;

    // ---- (c) link back
    const receivedBefore = sim.received().length;
    proxy.mode = 'pass';
    const backAt = Date.now();
    let closedAt: number | undefined;
    let upstreamAgainAt: number | undefined;
    const closeWatcher = (async () => {
      while (closedAt === undefined && Date.now() - backAt < 60_000) {
        if ((await status(url)).link === 'closed') closedAt = Date.now();
        else await sleep(25);
      }
    })();
    const linkBack: Verdict[] = [];
    while (upstreamAgainAt === undefined && Date.now() - backAt < 60_000) {
      const code = localCode();
      const v = await verify(url, code);
      note(v, code);
      linkBack.push(v);
      if (v.decided_by === 'upstream') upstreamAgainAt = Date.now();
      else await sleep(50);
    }
    await closeWatcher;
    if (upstreamAgainAt === undefined || closedAt === undefined) throw new Error('link back: decisions did not return to upstream within 60 s');
    say(`link back: status closed after ${closedAt - backAt} ms, first decision by upstream after ${upstreamAgainAt - backAt} ms (${linkBack.length} verifications)`);
    // replay after the link returns: its start delay and its rate, as the home system sees them
    const replayCalls = () => sim.received().slice(receivedBefore).filter((r) => backlog.has(r.out_verify_no));
    const first = await until('the first replayed record at the home system', async () => replayCalls()[0], START_JITTER_MS + 30_000, 50);
    const startDelayMs = Date.parse(first.at) - (closedAt ?? backAt);
    const firstAt = Date.parse(first.at);
    await sleep(Math.max(0, firstAt + RATE_SECONDS * 1000 - Date.now()));
    const inWindow = replayCalls().filter((r) => Date.parse(r.at) < firstAt + RATE_SECONDS * 1000).length;
    const measuredRate = +(inWindow / RATE_SECONDS).toFixed(1);
    say(`replay after link back: start delay ${startDelayMs} ms (random 0..${START_JITTER_MS}), ${measuredRate} records/s over ${RATE_SECONDS} s (configured ${RATE}/s)`);
    await app.stop();
    app = undefined;

    // ---- (a) window 1 vs window 16 on the rest of the backlog, rate unlimited, no start delay
    const windowRate = async (window: number, n: number) => {
      const before = sim.received().length;
      const depth0 = backlogAtLinkBack; // for the log only
      app = await start(window, 100_000, 0);
      url = app.info.url;
      const calls = () => sim.received().slice(before).filter((r) => backlog.has(r.out_verify_no));
      // the first records also open the window's connections (TLS handshakes): measured from record k0 on;
      // times are the home system's arrival stamps, so polling its log seldom (it is copied each time) loses nothing
      const k0 = Math.min(2 * window, Math.floor(n / 10));
      await until(`window ${window}: ${k0 + 1} records at the home system`, async () => (calls().length > k0 ? true : undefined), 60_000, 100);
      const cpu0 = { bench: process.cpuUsage(), app: (processCpuMs(app.proc.pid) ?? NaN) };
      await until(`window ${window}: ${k0 + n + 1} records at the home system`, async () => (calls().length > k0 + n ? true : undefined), 600_000, 250);
      const c = calls().slice(k0);
      if (process.env.BENCH_UPSTREAM_DUMP) writeFileSync(`${process.env.BENCH_UPSTREAM_DUMP}-w${window}.json`, JSON.stringify(c.map((r) => Date.parse(r.at))));
      const benchCpu = process.cpuUsage(cpu0.bench);
      // CPU per record: the appliance's process, and this one's (home system simulator + fault proxy)
      const cpuPerRecordMs = { appliance: +(((processCpuMs(app.proc.pid) ?? NaN) - cpu0.app) / n).toFixed(2), simulatorAndProxy: +((benchCpu.user + benchCpu.system) / 1000 / n).toFixed(2) };
      // from the first record's arrival to the (n+1)-th: n records' worth of time, start-up excluded
      const secs = (Date.parse(c[n]!.at) - Date.parse(c[0]!.at)) / 1000;
      await app.stop();
      app = undefined;
      const perSec = +(n / Math.max(secs, 0.001)).toFixed(1);
      say(`replay window ${window}: ${perSec} records/s at the home system (${n} records in ${secs.toFixed(2)} s; backlog was ${depth0}); CPU per record ${JSON.stringify(cpuPerRecordMs)} ms`);
      return { window, records: n, seconds: +secs.toFixed(2), perSecond: perSec, cpuPerRecordMs };
    };
    const w1 = await windowRate(1, W1_N);
    const w16 = await windowRate(16, W16_N);
    const speedup = +(w16.perSecond / Math.max(w1.perSecond, 0.001)).toFixed(1);

    // ---- the whole backlog drains; the home system's log is checked
    app = await start(16, 100_000, 0);
    url = app.info.url;
    const drained = await until('the backlog drained', async () => {
      const s = await status(url);
      return s.depth === 0 ? s : undefined;
    }, 600_000, 200);
    const calls = sim.received().filter((r) => backlog.has(r.out_verify_no));
    const byOvn = countBy(calls.map((r) => r.out_verify_no));
    const ovnsPerCode = new Map<string, Set<string>>();
    for (const r of sim.received()) {
      if (!r.ehealth_code) continue;
      const s = ovnsPerCode.get(r.ehealth_code) ?? new Set();
      s.add(r.out_verify_no);
      ovnsPerCode.set(r.ehealth_code, s);
    }
    const missingAtHome = [...backlog.keys()].filter((o) => !byOvn[o]).length;
    const secondTransactions = [...ovnsPerCode.values()].filter((s) => s.size > 1).length;
    const resends = calls.length - Object.keys(byOvn).length;
    say(`home system: ${Object.keys(byOvn).length}/${backlog.size} backlog records received, ${missingAtHome} missing, ${secondTransactions} codes under two out_verify_no, ${resends} resends of the same out_verify_no (3002); outbox dead ${drained.dead}`);

    const goals = {
      windowSpeedupAtLeast10: speedup >= 10,
      timeToOpenAtMost5s: timeToOpenMs <= 5000,
      openAllOfflineLocal: (openDecided['offline-local'] ?? 0) === OPEN_N,
      openP99AtMost50ms: (pct(openMs, 99) ?? Infinity) <= 50,
      foreignAnsweredAtOnce: foreignNow.every((v) => v.ret_code === '8004') && foreignDeferred.every((v) => v.decided_by === 'deferred') && (pct([...foreignNow, ...foreignDeferred].map((v) => v.ms), 99) ?? Infinity) <= 50,
      upstreamAgainWithin5s: upstreamAgainAt - backAt <= 5000,
      replayAtConfiguredRate: measuredRate <= RATE * 1.05 && measuredRate >= RATE * 0.8,
      nothingLostNothingTwice: missingAtHome === 0 && secondTransactions === 0 && drained.dead === 0,
    };
    const table: Array<[string, string, string, boolean]> = [
      ['replay window 1, +30 ms RTT', `${w1.perSecond}/s`, '', true],
      ['replay window 16, +30 ms RTT', `${w16.perSecond}/s (${speedup}×)`, '≥ 10×', goals.windowSpeedupAtLeast10],
      ['black hole: time to open', `${timeToOpenMs} ms`, '≤ 5 s', goals.timeToOpenAtMost5s],
      ['  local verify before open p50/p99', `${pct(beforeOpen.map((v) => v.ms), 50)} / ${pct(beforeOpen.map((v) => v.ms), 99)} ms (n ${beforeOpen.length})`, '', true],
      [`  ${OPEN_N} local verify once open p50/p99`, `${pct(openMs, 50)} / ${pct(openMs, 99)} ms, ${openDecided['offline-local'] ?? 0} offline-local`, 'p99 ≤ 50 ms, all offline-local', goals.openAllOfflineLocal && goals.openP99AtMost50ms],
      ['  foreign code once open p50/p99', `${pct(foreignNow.map((v) => v.ms), 50)} / ${pct(foreignNow.map((v) => v.ms), 99)} ms (8004); defer ${pct(foreignDeferred.map((v) => v.ms), 99)} ms p99`, '8004 / deferred at once', goals.foreignAnsweredAtOnce],
      ['link back: decided by upstream after', `${upstreamAgainAt - backAt} ms (status closed ${closedAt - backAt} ms)`, '≤ 5 s', goals.upstreamAgainWithin5s],
      ['  replay start delay / rate', `${startDelayMs} ms / ${measuredRate}/s`, `0..${START_JITTER_MS} ms / ${RATE}/s`, goals.replayAtConfiguredRate],
      ['  backlog at the home system', `${missingAtHome} missing, ${secondTransactions} twice, ${resends} resent (3002)`, 'none lost, none twice', goals.nothingLostNothingTwice],
    ];
    say('');
    for (const [what, got, goal, ok] of table) say(`${what.padEnd(40)} ${got.padEnd(58)} ${goal ? `${goal} ${ok ? 'ok' : 'MISSED'}` : ''}`);
    return {
      rttAddedMs: RTT_MS,
      linkUpVerifyMs: summary(up),
      replayWindow: { w1, w16, speedup },
      blackHole: {
        timeToOpenMs,
        desks: DESKS,
        beforeOpen: { ...summary(beforeOpen.map((v) => v.ms)), decided: countBy(beforeOpen.map((v) => v.decided_by ?? `error ${v.ret_code}`)) },
        afterOpen: { ...summary(openMs), decided: openDecided },
        foreign: { ...summary(foreignNow.map((v) => v.ms)), codes: countBy(foreignNow.map((v) => v.ret_code ?? '?')) },
        foreignDeferred: { ...summary(foreignDeferred.map((v) => v.ms)), decided: countBy(foreignDeferred.map((v) => v.decided_by ?? '?')) },
      },
      linkBack: { closedAfterMs: closedAt - backAt, upstreamAgainAfterMs: upstreamAgainAt - backAt, replayStartDelayMs: startDelayMs, startJitterMs: START_JITTER_MS, replayPerSecond: measuredRate, configuredPerSecond: RATE, rateSeconds: RATE_SECONDS },
      backlog: { records: backlog.size, receivedAtHome: Object.keys(byOvn).length, missingAtHome, codesUnderTwoOutVerifyNo: secondTransactions, resendsAnswered3002: resends, dead: drained.dead },
      goals,
      targetsMet: Object.values(goals).every(Boolean),
    };
  } finally {
    await app?.stop();
    await proxy.close();
    await sim.close();
    for (const d of [dir, ...configDirs]) rmSync(d, { recursive: true, force: true });
  }
}

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

runIfMain(import.meta.url, run);
