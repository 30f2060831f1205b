/**
 * The scan stream's fan-out alone (`npm run bench -- scan-fanout`): the HIS stream route on a real
 * HTTP server in this process, BENCH_FANOUT_READERS (1000) SSE readers in a child process (spread over
 * 127.0.0.10…, 50 per address), BENCH_FANOUT_SCANS_PER_S (20) scans a second, each a `scan` event and
 * its `result` 4 ms later (the size of a real result event), for BENCH_FANOUT_MS (10 000).
 * Figures: server CPU (this process only) per event and per event and reader, the event-loop delay
 * p99/max while it runs (what a verification arriving meanwhile waits at most), and whether every
 * reader got every event. bench/his-abuse.ts case (c) is the same load on the whole appliance, with
 * the desk's verify p99 beside it.
 */
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Hono } from 'hono';
import { ScanHub } from '../src/scan/hub.ts';
import { registerScanRoutes } from '../src/his/scans-route.ts';
import { startHisServer } from '../src/his/server.ts';

const env = process.env;
const READERS = Number(env.BENCH_FANOUT_READERS ?? 1000);
const SCANS_PER_S = Number(env.BENCH_FANOUT_SCANS_PER_S ?? 20);
const RUN_MS = Number(env.BENCH_FANOUT_MS ?? 10_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** the readers: plain CommonJS for `node -e`; count `event: ` lines per reader (a tail carried across reads), not the stream's opening `ready` */
const READER_CODE = `
const net = require('node:net');
const { port, n } = JSON.parse(process.argv[1]);
const EV = Buffer.from('\\nevent: ');
const READY = Buffer.from('\\nevent: ready\\n');
const readers = [];
let ok = 0;
for (let i = 0; i < n; i++) {
  const r = { ok: false, ready: false, events: 0, carry: undefined };
  readers.push(r);
  const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.' + (10 + Math.floor(i / 50)) }, () => s.write('GET /v1/scans HTTP/1.1\\r\\nHost: x\\r\\nAccept: text/event-stream\\r\\n\\r\\n'));
  s.on('data', (d) => {
    if (!r.ok && d.includes('HTTP/1.1 200')) { r.ok = true; if (++ok === n) process.send({ ready: ok }); }
    const b = r.carry ? Buffer.concat([r.carry, d]) : d;
    for (let j = b.indexOf(EV); j >= 0; j = b.indexOf(EV, j + EV.length)) r.events++;
    if (!r.ready && b.includes(READY)) { r.ready = true; r.events--; }
    r.carry = Buffer.from(b.subarray(Math.max(0, b.length - (EV.length - 1))));
  });
  s.on('error', () => {});
}
process.on('message', () => process.send({ connected: readers.filter((r) => r.ok).length, events: readers.map((r) => r.events) }));
`;

export async function run(): Promise<Record<string, unknown>> {
  const hub = new ScanHub(1000, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub, maxSubscribers: READERS + 10, subscriberBuffer: 256 });
  const server = await startHisServer(app, { listen: '127.0.0.1:0', connections: { max: READERS + 100, perAddress: 64, reserve: 8, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, idleTimeoutMs: 120_000 } });
  const port = Number(new URL(server.url).port);
  const child = spawn(process.execPath, ['-e', READER_CODE, JSON.stringify({ port, n: READERS })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const message = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  try {
    const ready = await Promise.race([message<{ ready: number }>(), sleep(30_000).then(() => ({ ready: -1 }))]);
    await sleep(500);
    // a result event the size of a real one (masked identity, codes, ids)
    const result = { ret_code: '0000', ret_msg: '成功', decided_by: 'local', code_type: 'dynamic', ehcin: '3502A0001', ehealth_card_id: 'E'.repeat(64), id_type: '01', id_no: '3503**********7715', user_name: '陈*海', out_verify_no: '3502A00012026120200001', out_verify_time: '20261202080000', term_id: '3502A0001STM0001', scannerId: 'serial:/dev/ttyUSB0', station: 'desk-1' };
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let published = 0;
    for (let next = t0; next < t0 + RUN_MS; next += 1000 / SCANS_PER_S) {
      await sleep(Math.max(0, next - performance.now()));
      hub.publish('scan', 'serial:/dev/ttyUSB0', 'desk-1', { text: '[ehc code]', scannerId: 'serial:/dev/ttyUSB0', station: 'desk-1' });
      await sleep(4);
      hub.publish('result', 'serial:/dev/ttyUSB0', 'desk-1', result);
      published += 2;
    }
    await sleep(500);
    const cpu = process.cpuUsage(cpu0);
    delay.disable();
    const seconds = (performance.now() - t0) / 1000;
    child.send('report');
    const report = await message<{ connected: number; events: number[] }>();
    const sorted = [...report.events].sort((a, b) => a - b);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return {
      readers: READERS,
      all_connected: ready.ready === READERS,
      connected: report.connected,
      events_published: published,
      events_per_reader: { min: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0 },
      every_reader_got_every_event: sorted[0] === published,
      server_cpu_share_of_one_core: +(cpuMs / 1000 / seconds).toFixed(3),
      server_cpu_ms_per_event: +(cpuMs / published).toFixed(3),
      server_cpu_us_per_event_and_reader: +((cpuMs * 1000) / published / READERS).toFixed(2),
      event_loop_delay_ms: { p50: +(delay.percentile(50) / 1e6).toFixed(2), p99: +(delay.percentile(99) / 1e6).toFixed(2), max: +(delay.max / 1e6).toFixed(2) },
    };
  } finally {
    child.kill();
    await server.close();
  }
}
