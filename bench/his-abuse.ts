/**
 * The HIS port under hostile load (`npm run bench -- his-abuse`): a legitimate desk verifies at a
 * steady 50 requests/s from 127.0.0.1 (keep-alive, distinct local dynamic codes) while, from other
 * loopback addresses,
 *   (a) 10 000 key-guessing requests arrive (50 at a time, from 127.0.0.2),
 *   (b) a slow-body flood holds the per-address connection limit and keeps trying for more (127.0.0.3),
 *   (c) 1 000 scan-stream subscribers (127.0.0.10–29, 50 each: under the per-address limit) watch 20 injected scans/s.
 * Each phase's legit verify p99 is given as a ratio to the quiet p99 of the same run (goal ≤ 2×).
 * The appliance runs in its own process; the load comes from this one (both share the 2 cores).
 */
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { APPLIANCE_NODE_FLAGS, benchConfig, startChild } from './lib.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const KEY = 'demo-his-key-change-me-0001';
const PHASE_MS = Number(process.env.BENCH_ABUSE_PHASE_MS ?? 8000);
const PER_ADDRESS = 64;
const SUBSCRIBERS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(2) : 0;
};

function post(agent: http.Agent, url: string, body: string, headers: Record<string, string>, localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** The legitimate desk: one verification every 20 ms for `ms`, latencies in ms. */
async function desk(url: string, codes: () => Promise<string>, ms: number): Promise<{ p50: number; p99: number; max: number; n: number; failed: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const lat: number[] = [];
  let failed = 0;
  const inflight: Promise<void>[] = [];
  const end = performance.now() + ms;
  for (let next = performance.now(); next < end; next += 20) {
    await sleep(Math.max(0, next - performance.now()));
    const body = JSON.stringify({ ehealth_code: await codes() });
    const t0 = performance.now();
    inflight.push(post(agent, `${url}/v1/verify`, body, { authorization: `Bearer ${KEY}` }, '127.0.0.1').then((s) => {
      if (s === 200) lat.push(performance.now() - t0);
      else failed++;
    }));
  }
  await Promise.all(inflight);
  agent.destroy();
  return { p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100), n: lat.length, failed };
}

async function guessing(url: string, total: number): Promise<{ sent: number; per_s: number; statuses: Record<string, number> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const statuses: Record<string, number> = {};
  let sent = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (sent < total) {
      const i = sent++;
      const s = await post(agent, `${url}/v1/verify`, '{}', { authorization: `Bearer guess-${String(i).padStart(24, '0')}` }, '127.0.0.2');
      statuses[s] = (statuses[s] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  agent.destroy();
  return { sent, per_s: Math.round(sent / ((performance.now() - t0) / 1000)), statuses };
}

function slowBody(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.write(`POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{`);
      resolve(s);
    });
    s.on('error', () => resolve(s));
  });
}

function subscriber(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.write(`GET /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nAccept: text/event-stream\r\n\r\n`);
      resolve(s);
    });
    s.on('data', () => {});
    s.on('error', () => resolve(s));
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const cfg = benchConfig((doc) => {
    doc.his.connections = { max: 2048, perAddress: PER_ADDRESS, reserve: 32 };
    doc.scan = { maxSubscribers: SUBSCRIBERS + 50, subscriberBuffer: 256 };
    doc.scannerAutoDetect = false;
    doc.simulator.listen = '127.0.0.1:0';
    doc.upstream.url = 'http://127.0.0.1:0/ehc'; // port 0: the embedded simulator's own port (as in test/helpers/appliance.ts)
  });
  const keyFile = path.join(cfg.dir, 'state', 'soft-card.keys.json');
  const keys = { ...DEFAULT_KEY_INDEXES };
  const card = new ProfiledCard(await SoftCard.open(keyFile, keys), keys);
  const appliance = await startChild<{ url: string }>(path.join(here, 'fixtures/appliance-server.ts'), [cfg.file], APPLIANCE_NODE_FLAGS);
  const url = appliance.info.url;
  const port = Number(new URL(url).port);
  let n = 0;
  const codes = () => issueHealthCode(card, { identity: { idType: '01', idNo: '350322199008207715' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 3_600_000 + n++ * 1000) });
  const sockets: Socket[] = [];
  try {
    await desk(url, codes, 2000); // warm-up
    const quiet = await desk(url, codes, PHASE_MS);

    const guessRun = guessing(url, 10_000);
    const duringGuessing = await desk(url, codes, PHASE_MS);
    const guesses = await guessRun;

    for (let i = 0; i < PER_ADDRESS * 3; i++) sockets.push(await slowBody(port, '127.0.0.3'));
    const retry = setInterval(() => void slowBody(port, '127.0.0.3').then((s) => sockets.push(s)), 10);
    const duringSlow = await desk(url, codes, PHASE_MS);
    clearInterval(retry);
    const budget = ((await (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { his: { connections: Record<string, number> } }).his.connections;
    for (const s of sockets.splice(0)) s.destroy();
    await sleep(500);

    for (let i = 0; i < SUBSCRIBERS; i++) sockets.push(await subscriber(port, `127.0.0.${10 + (i % 20)}`));
    await sleep(1000);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let scans = 0;
    const inject = setInterval(() => {
      void codes().then((text) => post(agent, `${url}/v1/scans/inject`, JSON.stringify({ text, scanner: `bench${scans++ % 4}` }), { authorization: `Bearer ${KEY}` }, '127.0.0.4'));
    }, 50);
    const duringFanout = await desk(url, codes, PHASE_MS);
    clearInterval(inject);
    const stream = ((await (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { his: { scan_stream: Record<string, number> } }).his.scan_stream;
    agent.destroy();
    const ratio = (p: { p99: number }) => +(p.p99 / Math.max(quiet.p99, 0.001)).toFixed(2);
    return {
      phase_ms: PHASE_MS,
      quiet,
      guessing: { desk: duringGuessing, p99_ratio: ratio(duringGuessing), guesses },
      slow_flood: { desk: duringSlow, p99_ratio: ratio(duringSlow), per_address_limit: PER_ADDRESS, budget },
      fanout: { desk: duringFanout, p99_ratio: ratio(duringFanout), subscribers: stream.subscribers, scans_injected: scans, scans_per_s: +(scans / (PHASE_MS / 1000)).toFixed(1) },
    };
  } finally {
    for (const s of sockets) s.destroy();
    await appliance.stop();
  }
}
