/**
 * Scanner benchmark.
 *  1. Throughput/latency: 8 simulated serial scanners (socat pty pairs) at 20 scans/s each for
 *     EHC_BENCH_SECONDS (default 10) through the real drivers, pipeline, Hono SSE route and HTTP
 *     server; latency = last byte written → `result` event received on /v1/scans. Lost and duplicated
 *     scans are counted (must be 0). The Verifier is the real one: the SoftCard decides local dynamic
 *     codes and each usage record goes into the fsync'd SQLite outbox before the result is published.
 *  2. Hotplug: EHC_PLUG_CYCLES (default 1000) plug/unplug cycles of one scanner: plug → open latency,
 *     and fds / listeners before and after (must not grow).
 * Run: `node --import tsx bench/scanners.ts` (or through bench/run.ts, which calls run()).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { PtyPair, socatMissing } from '../test/helpers/pty-pair.ts';
import { openSse } from '../test/helpers/sse.ts';
import { startScanning } from '../src/scan/index.ts';
import { registerScanRoutes } from '../src/his/scans-route.ts';
import { ScannerManager } from '../drivers/manager.ts';
import { createLogger } from '../src/platform/log.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { openOutbox } from '../src/store/index.ts';
import type { Upstream } from '../src/protocol/upstream.ts';
import { EhcError } from '../src/errors.ts';

const site = { orgCode: 'bench', localEhcins: ['3502A0001'], termId: '3502A0001STMA0001' };

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const r2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function latency(dir: string, scanners: number, ratePerSec: number, seconds: number) {
  const pairs = Array.from({ length: scanners }, (_, i) => new PtyPair(path.join(dir, `scanner-${i}`), path.join(dir, `host-${i}`)));
  await Promise.all(pairs.map((p) => p.plug()));
  // the real verifier: local dynamic codes decided by the SoftCard, usage records into the real outbox
  const log = createLogger({ level: 'warn' });
  const keys = { ...DEFAULT_KEY_INDEXES };
  const card = new ProfiledCard(await SoftCard.open(path.join(dir, 'state', 'keys.json'), keys), keys);
  const outbox = await openOutbox({ stateDir: path.join(dir, 'state'), outbox: { maxRecords: 1_000_000, maxBytes: 1 << 30, maxAgeHours: 24, whenFull: 'reject-new', replayBatch: 64, replayYieldAbove: 0.9, replayMaxYieldMs: 5000 }, card: { driver: 'soft', keyFile: '', keys } }, card, log);
  const upstream: Upstream = {
    call: async () => {
      throw new EhcError('8004', 'bench: no home system');
    },
    health: async () => ({ reachable: false, url: 'none' }),
    close: async () => {},
  };
  const verifier = new RoutingVerifier({ card, upstream, outbox, settings: { localEhcins: site.localEhcins, policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'bench', operatorName: 'bench', termId: site.termId } });
  const expiresAt = new Date(Date.now() + 3600_000);
  const codes: string[] = [];
  for (let n = 0; n < scanners * ratePerSec * seconds; n++) {
    codes.push(await issueHealthCode(card, { identity: { idType: '01', idNo: `3503221990${String(n).padStart(8, '0')}` }, ehcappid: '3502A0001APPA0001', expiresAt }));
  }
  const scanning = await startScanning(
    { site, scanners: pairs.map((p, i) => ({ driver: 'serial' as const, path: p.devicePath, station: `desk-${i}`, baudRate: 115200 })), scannerAutoDetect: false, scan: { dedupeWindowMs: 1500, streamBuffer: 1000 } },
    { verifier, log, stateDir: path.join(dir, 'state') },
  );
  const app = new Hono();
  registerScanRoutes(app, scanning.routeDeps);
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sse = await openSse(`${base}/v1/scans`);
  // where the time goes: write → driver scan event → result published on the hub → SSE received
  const atDriver = new Map<string, number>();
  const atPublish = new Map<number, number>();
  scanning.manager.on('scan', (ev) => atDriver.set(ev.text, performance.now()));
  scanning.hub.subscribe((ev) => {
    if (ev.type === 'result') atPublish.set(ev.id, performance.now());
  });
  const stages = { toDriver: [] as number[], toPublish: [] as number[], toClient: [] as number[] };
  const written = new Map<string, number>();
  const textOfScan = new Map<string, string>();
  const got = new Map<string, number>();
  const latencies: number[] = [];
  let duplicates = 0;
  const series: Array<[number, number]> = [];
  sse.onEvent = (ev) => {
    const data = JSON.parse(ev.data) as { id: number; scanId?: number; text?: string };
    if (ev.event === 'scan' && data.text) textOfScan.set(String(data.id), data.text);
    if (ev.event !== 'result' && ev.event !== 'error') return;
    const text = textOfScan.get(String(data.scanId));
    if (!text) return;
    const n = (got.get(text) ?? 0) + 1;
    got.set(text, n);
    if (n > 1) duplicates++;
    const t = written.get(text);
    const d = atDriver.get(text);
    const pub = atPublish.get(data.id);
    if (t !== undefined && d !== undefined && pub !== undefined && n === 1) {
      stages.toDriver.push(d - t);
      stages.toPublish.push(pub - d);
      stages.toClient.push(ev.receivedAt - pub);
    }
    if (t !== undefined && n === 1) {
      latencies.push(ev.receivedAt - t);
      series.push([t, ev.receivedAt - t]);
    }
  };
  const cpu0 = process.cpuUsage();
  const perScanner = ratePerSec * seconds;
  const interval = 1000 / ratePerSec;
  let seq = 0;
  await Promise.all(
    pairs.map(async (p, i) => {
      await sleep((interval / scanners) * i); // stagger the scanners
      const start = performance.now();
      for (let k = 0; k < perScanner; k++) {
        const code = codes[seq++]!;
        p.write(`]Q1${code}\r`);
        written.set(code, performance.now());
        const next = start + (k + 1) * interval;
        await sleep(Math.max(0, next - performance.now()));
      }
    }),
  );
  const total = perScanner * scanners;
  await sse.until(() => got.size >= total, 10000).catch(() => undefined);
  await sleep(300); // late duplicates would show up here
  const cpu = process.cpuUsage(cpu0);
  sse.close();
  server.close();
  (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  await scanning.stop();
  const usageRecords = outbox.stats().depth;
  await outbox.close();
  await card.close();
  await Promise.all(pairs.map((p) => p.unplug()));
  latencies.sort((a, b) => a - b);
  if (process.env.EHC_BENCH_DEBUG) console.error(series.filter(([, l]) => l > 20).map(([t, l]) => `${r2(t)}:${r2(l)}`).join(' '));
  return {
    scanners,
    scansPerSecondEach: ratePerSec,
    seconds,
    written: total,
    verifiedReceived: got.size,
    usageRecordsQueued: usageRecords,
    lost: total - got.size,
    duplicated: duplicates,
    latencyMs: { p50: r2(pct(latencies, 50)), p99: r2(pct(latencies, 99)), max: r2(latencies.at(-1) ?? NaN) },
    stagesMs: Object.fromEntries(
      Object.entries(stages).map(([k, v]) => {
        const sorted = [...v].sort((a, b) => a - b);
        return [k, { p50: r2(pct(sorted, 50)), p99: r2(pct(sorted, 99)) }];
      }),
    ),
    p99TargetMs: 20,
    p99Met: pct(latencies, 99) <= 20,
    /** CPU of this process (appliance + the bench's own SSE client and writers) per scan */
    cpuMsPerScan: r2((cpu.user + cpu.system) / 1000 / total),
  };
}

async function hotplug(dir: string, cycles: number) {
  const p = new PtyPair(path.join(dir, 'hp-scanner'), path.join(dir, 'hp-host'));
  const m = new ScannerManager({ scanners: [{ driver: 'serial', path: p.devicePath }], autoDetect: false, log: createLogger({ level: 'warn' }), pollMs: 500, retryMs: 200 });
  let attached = 0;
  let detached = 0;
  let scans = 0;
  let attachedAt = 0;
  m.on('attached', () => {
    attached++;
    attachedAt = performance.now();
  });
  m.on('detached', () => detached++);
  m.on('scan', () => scans++);
  await m.start();
  const until = async (ok: () => boolean) => {
    const end = Date.now() + 10000;
    while (!ok()) {
      if (Date.now() > end) throw new Error('hotplug bench: gave up waiting');
      await sleep(1);
    }
  };
  const openMs: number[] = [];
  const fds = () => readdirSync('/proc/self/fd').length;
  // warm-up
  await p.plug();
  await until(() => attached === 1);
  await p.unplug();
  await until(() => detached === 1);
  const fdsBefore = fds();
  const listenersBefore = m.listenerCount('scan') + m.listenerCount('attached') + process.listenerCount('exit');
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < cycles; i++) {
    await p.plug();
    const linked = performance.now(); // socat's links exist (the "device node" appeared)
    await until(() => attached === i + 2);
    openMs.push(Math.max(0, attachedAt - linked));
    p.write(`CYCLE-${i}\r`);
    await until(() => scans === i + 1);
    await p.unplug();
    await until(() => detached === i + 2);
  }
  const result = {
    cycles,
    scansReceived: scans,
    plugToOpenMs: { p50: r2(pct([...openMs].sort((a, b) => a - b), 50)), max: r2(Math.max(...openMs)) },
    fdsBefore,
    fdsAfter: fds(),
    listenersBefore,
    listenersAfter: m.listenerCount('scan') + m.listenerCount('attached') + process.listenerCount('exit'),
    heapGrowthMB: r2((process.memoryUsage().heapUsed - heapBefore) / 1048576),
  };
  await m.stop();
  return result;
}

export async function run(): Promise<Record<string, unknown>> {
  const missing = socatMissing();
  if (missing) return { skipped: missing };
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-bench-scan-'));
  try {
    const seconds = Number(process.env.EHC_BENCH_SECONDS ?? 10);
    const cycles = Number(process.env.EHC_PLUG_CYCLES ?? 1000);
    const loadBefore = loadavg()[0];
    const stream = await latency(dir, 8, 20, seconds);
    const plug = await hotplug(dir, cycles);
    return {
      name: 'scanners',
      verifier: 'RoutingVerifier: SoftCard, local dynamic codes, usage records into the SQLite outbox',
      machine: { cpus: cpus().length, loadavg1Before: r2(loadBefore ?? NaN), loadavg1After: r2(loadavg()[0] ?? NaN) },
      stream,
      hotplug: plug,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = await run();
  console.log(JSON.stringify(out, null, 2));
  process.exit(0);
}
