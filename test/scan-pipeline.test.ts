/**
 * Scan pipeline and HIS routes: STM numbers kept in the fsync'ed state store, duplicate suppression,
 * raw pass-through, the SSE stream (filters, Last-Event-ID replay, gap, auth) over a real HTTP server,
 * /v1/scanners, /v1/scans/inject, and a pty scanner end to end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { needs } from './helpers/skip.ts';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Hono, type MiddlewareHandler } from 'hono';
import { serve } from '@hono/node-server';
import { FakeVerifier, healthCode } from './helpers/fake-verifier.ts';
import { openSse } from './helpers/sse.ts';
import { PtyPair, socatMissing } from './helpers/pty-pair.ts';
import { openStateStore } from '../src/store/state.ts';
import { createTerminalRegistry } from '../src/scan/terminals.ts';
import { ScanHub } from '../src/scan/hub.ts';
import { ScanPipeline } from '../src/scan/pipeline.ts';
import { looksLikeHealthCode } from '../src/code/parse.ts';
import { startScanning } from '../src/scan/index.ts';
import { registerScanRoutes } from '../src/his/scans-route.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { main as scannersTool } from '../tools/scanners.ts';

const root = mkdtempSync(path.join(tmpdir(), 'ehc-scan-'));
let n = 0;
const freshDir = () => path.join(root, `s${n++}`);
const site = { orgCode: '45678901-2', localEhcins: ['3502A0001'], termId: '3502A0001STMA0001' };
const KEY = 'test-his-key-0123456789';
let authCalls = 0;
const bearer: MiddlewareHandler = async (c, next) => {
  authCalls++;
  if (c.req.header('Authorization') !== `Bearer ${KEY}`) return c.json({ ret_code: '1010', ret_msg: 'unauthorized' }, 401);
  await next();
};
const AUTH = { Authorization: `Bearer ${KEY}` };

test('STM numbers: one per scannerId, never the appliance\'s own, persisted durably, config number wins', async () => {
  const dir = freshDir();
  const store = await openStateStore(dir);
  const reg = createTerminalRegistry({ site, scanners: [{ driver: 'serial', path: '/x', stmCode: '3502A0001STMA0002' }] }, store);
  const [a, b, a2] = await Promise.all([reg.termIdFor('serial:/a'), reg.termIdFor('serial:/b'), reg.termIdFor('serial:/a')]);
  assert.is(a, '3502A0001STMA0003', 'skips the site termId (0001) and the configured 0002');
  assert.is(b, '3502A0001STMA0004');
  assert.is(a2, a);
  assert.match(a, /^[0-9]{4}[ABCDEFX][0-9]{4}STM[ABCDEFX][0-9]{4}$/);
  const onDisk = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
  assert.is(onDisk.terminals['serial:/a'].stm, a);
  assert.not.ok(existsSync(path.join(dir, '.state.json.tmp')), 'temp file renamed into place');
  const again = createTerminalRegistry({ site, scanners: [] }, await openStateStore(dir));
  assert.is(await again.termIdFor('serial:/b'), b, 'same number after a restart');
  assert.is(await again.termIdFor('serial:/c'), '3502A0001STMA0002', 'a number freed from the config may be allocated');
});

test('state store: a process killed (SIGKILL) while allocating leaves a whole, valid state file', async () => {
  const { spawn } = await import('node:child_process');
  for (let round = 0; round < 3; round++) {
    const dir = freshDir();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/state-writer.ts', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 20 + round * 30));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
    const stms = Object.values(state.terminals as Record<string, { stm: string }>).map((t) => t.stm);
    assert.ok(stms.length >= 4, `allocations kept (${stms.length})`);
    assert.is(new Set(stms).size, stms.length, 'no number given twice');
    // and the allocator resumes after the crash without reusing a number
    const reg = createTerminalRegistry({ site, scanners: [] }, await openStateStore(dir));
    assert.not.ok(stms.includes(await reg.termIdFor('serial:/after-crash')));
  }
});

test('health-code shape test: 4- and 5-field codes are codes, other barcodes are not', () => {
  assert.ok(looksLikeHealthCode(healthCode(1)));
  assert.ok(looksLikeHealthCode(healthCode(2, 1)));
  assert.not.ok(looksLikeHealthCode('6901234567892'));
  assert.not.ok(looksLikeHealthCode('https://example.invalid/x'));
});

test('hub ring: replay after an id, filter, gap when overwritten or when the id is from before a restart', () => {
  const hub = new ScanHub(4, 1000);
  for (let i = 0; i < 6; i++) hub.publish('scan', i % 2 ? 'serial:/b' : 'serial:/a', i % 2 ? 'desk-2' : 'desk-1', { i });
  assert.is(hub.lastId, 1005);
  assert.is(hub.oldestId, 1002);
  assert.equal(hub.since(1003), { events: hub.since(1003).events, gap: false });
  assert.equal(hub.since(1003).events.map((e) => e.id), [1004, 1005]);
  assert.equal(hub.since(1001, { station: 'desk-2' }).events.map((e) => e.id), [1003, 1005]);
  assert.is(hub.since(1000).gap, true, '1001 was overwritten');
  assert.is(hub.since(1001).gap, false);
  const restarted = new ScanHub(4, 5000);
  assert.is(restarted.since(1005).gap, true, 'an id from before the restart is a gap');
  assert.is(restarted.since(1005).events.length, 0);
});

function pipelineWith(dedupeWindowMs = 1000) {
  const verifier = new FakeVerifier();
  const hub = new ScanHub(64);
  const log = memoryLogger();
  const p = new ScanPipeline({
    verifier,
    hub,
    log,
    dedupeWindowMs,
    identity: async (id) => ({ termId: id === 'serial:/a' ? '3502A0001STMA0007' : '3502A0001STMA0008', station: 'desk-1' }),
  });
  return { verifier, hub, log, p };
}

test('duplicates from one scanner within the window are suppressed; other scanners and later scans are not', async () => {
  const { verifier, p } = pipelineWith(1000);
  const code = healthCode(7);
  const outcomes = [
    await p.ingest({ scannerId: 'serial:/a', text: code, at: 10_000 }),
    await p.ingest({ scannerId: 'serial:/a', text: code, at: 10_400 }),
    await p.ingest({ scannerId: 'serial:/b', text: code, at: 10_500 }),
    await p.ingest({ scannerId: 'serial:/a', text: code, at: 12_000 }),
  ].map((o) => o.status);
  assert.equal(outcomes, ['verified', 'duplicate', 'verified', 'verified']);
  assert.equal(verifier.requests.map((r) => [r.scannerId, r.termId]), [
    ['serial:/a', '3502A0001STMA0007'],
    ['serial:/b', '3502A0001STMA0008'],
    ['serial:/a', '3502A0001STMA0007'],
  ]);
});

test('non-health-card payloads are passed through as raw scans, never verified, never logged in clear', async () => {
  const { verifier, hub, log, p } = pipelineWith();
  const seen: string[] = [];
  hub.subscribe((ev) => seen.push(`${ev.type}:${ev.data.kind ?? ''}`));
  const out = await p.ingest({ scannerId: 'serial:/a', text: 'PATIENT-WRISTBAND-350203199001011234', at: 1 });
  assert.is(out.status, 'raw');
  assert.is(verifier.requests.length, 0);
  assert.equal(seen, ['scan:raw']);
  const code = healthCode(9);
  await p.ingest({ scannerId: 'serial:/a', text: code, at: 2 });
  const logs = log.lines.join('\n');
  assert.not.ok(logs.includes('350203199001011234'), 'raw text not in logs');
  assert.not.ok(logs.includes('PATIENT-'), 'not even the head of a raw scan');
  assert.ok(logs.includes('sha256:'), 'a fingerprint instead');
  assert.not.ok(logs.includes(code), 'health code not in logs');
  assert.not.ok(logs.includes('张三丰'));
});

test('a scanner without a terminal number gets an error event, not a silent drop', async () => {
  const hub = new ScanHub(16);
  const p = new ScanPipeline({
    verifier: new FakeVerifier(),
    hub,
    log: memoryLogger(),
    dedupeWindowMs: 0,
    identity: async () => {
      throw new Error('no free reading-terminal number');
    },
  });
  const out = await p.ingest({ scannerId: 'serial:/z', text: healthCode(3), at: 1 });
  assert.is(out.status, 'failed');
  const [ev] = hub.since(0).events;
  assert.is(ev?.type, 'error');
  assert.is(ev?.data.ret_code, '1009');
});

test('a code the verifier rejects becomes an error event with its return code', async () => {
  const { verifier, hub, p } = pipelineWith();
  const bad = healthCode(11);
  verifier.reject.add(bad);
  const out = await p.ingest({ scannerId: 'serial:/a', text: bad, at: 1 });
  assert.is(out.status, 'failed');
  const { events } = hub.since(0);
  assert.equal(events.map((e) => e.type), ['scan', 'error']);
  assert.is(events[1]!.data.ret_code, '2002');
  assert.is(events[1]!.data.termId, '3502A0001STMA0007');
});

async function httpApp(deps: Parameters<typeof registerScanRoutes>[1]) {
  const app = new Hono();
  registerScanRoutes(app, deps);
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise<void>((r) => { server.close(() => r()); (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(); }) };
}

test('GET /v1/scans: authenticated SSE with station filter, Last-Event-ID replay and gap', async () => {
  const dir = freshDir();
  const scanning = await startScanning(
    { site, scanners: [], scannerAutoDetect: false, scan: { dedupeWindowMs: 1000, streamBuffer: 16 } },
    { verifier: new FakeVerifier(), log: memoryLogger(), stateDir: dir },
  );
  const http = await httpApp({ ...scanning.routeDeps, auth: bearer });
  try {
    authCalls = 0;
    const unauth = await fetch(`${http.base}/v1/scans`);
    assert.is(unauth.status, 401);
    assert.is(authCalls, 1, 'auth runs once per request');
    await unauth.body?.cancel();
    const desk1 = await openSse(`${http.base}/v1/scans?station=desk-1`, AUTH);
    assert.is(desk1.status, 200);
    const all = await openSse(`${http.base}/v1/scans`, AUTH);
    const inject = (body: unknown) => fetch(`${http.base}/v1/scans/inject`, { method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const r1 = await inject({ text: healthCode(1), scanner: 'kiosk1', station: 'desk-1' });
    assert.is(r1.status, 200);
    const j1 = (await r1.json()) as { status: string };
    assert.is(j1.status, 'verified');
    await (await inject({ text: 'OTHER-BARCODE', scanner: 'kiosk2', station: 'desk-2' })).text();
    await all.until((ev) => ev.filter((e) => e.event === 'scan').length === 2);
    await desk1.until((ev) => ev.some((e) => e.event === 'result'));
    assert.is(desk1.events[0]!.event, 'ready', 'a stream opened without Last-Event-ID begins with its position');
    assert.ok(desk1.events.slice(1).every((e) => JSON.parse(e.data).station === 'desk-1'), 'only desk-1 events');
    const result = JSON.parse(desk1.events.find((e) => e.event === 'result')!.data);
    assert.is(result.scannerId, 'virtual:kiosk1');
    assert.is(result.user_name, '张三丰', 'the HIS gets the identity unmasked');
    assert.is(result.id_no, '350203199001011234');
    assert.match(result.termId, /^3502A0001STMA\d{4}$/);
    assert.is(result.term_id, result.termId, 'the verifier was asked with the scanner\'s STM number');
    const raw = JSON.parse(all.events.find((e) => e.event === 'scan' && JSON.parse(e.data).kind === 'raw')!.data);
    assert.is(raw.text, 'OTHER-BARCODE');
    // reconnect: replay what came after the first event
    const seen = all.events.slice(1); // after its ready event
    const firstId = seen[0]!.id!;
    const resumed = await openSse(`${http.base}/v1/scans`, { ...AUTH, 'Last-Event-ID': firstId });
    await resumed.until((ev) => ev.length === seen.length - 1);
    assert.equal(resumed.events.map((e) => e.id), seen.slice(1).map((e) => e.id), 'a resumed stream gets no ready, only what it missed');
    // overflow the 16-event ring: an old Last-Event-ID gets a gap event first
    for (let i = 0; i < 20; i++) await (await inject({ text: `RAW-${i}`, scanner: 'kiosk2', station: 'desk-2' })).text();
    const late = await openSse(`${http.base}/v1/scans`, { ...AUTH, 'Last-Event-ID': firstId });
    await late.until((ev) => ev.length >= 1 + 16);
    assert.is(late.events[0]!.event, 'gap');
    const ids = late.events.slice(1).map((e) => Number(e.id));
    assert.equal(ids, [...ids].sort((a, b) => a - b), 'in order');
    assert.is(new Set(ids).size, ids.length, 'no duplicates');
    const subscribed = scanning.hub.subscribers;
    for (const c of [desk1, all, resumed, late]) c.close();
    const end = Date.now() + 5000;
    while (scanning.hub.subscribers > subscribed - 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.is(scanning.hub.subscribers, subscribed - 4, 'closed streams unsubscribe');
  } finally {
    await http.close();
    await scanning.stop();
  }
});

test('POST /v1/scans/inject validates its body and the tool injects; GET /v1/scanners lists scanners', async () => {
  const scanning = await startScanning(
    { site, scanners: [], scannerAutoDetect: false, scan: { dedupeWindowMs: 1000, streamBuffer: 16 } },
    { verifier: new FakeVerifier(), log: memoryLogger(), stateDir: freshDir() },
  );
  const http = await httpApp({ ...scanning.routeDeps, auth: bearer });
  try {
    const post = (body: string) => fetch(`${http.base}/v1/scans/inject`, { method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, body });
    const bad1 = await post('{"text":""}');
    assert.is(bad1.status, 400);
    assert.is(((await bad1.json()) as { ret_code: string }).ret_code, '9001');
    const bad2 = await post('{"text":"x","scanner":"../etc"}');
    assert.is(bad2.status, 400);
    await bad2.text();
    const bad3 = await post('not json');
    assert.is(bad3.status, 400);
    await bad3.text();
    const printed: string[] = [];
    const code = await scannersTool(['inject', 'DEMO-BARCODE', '--scanner', 'demo', '--station', 'desk-9', '--url', http.base, '--key', KEY], (s) => printed.push(s));
    assert.is(code, 0);
    assert.match(printed[0]!, /^200 .*"status":"raw"/);
    const raw = scanning.hub.since(0).events.find((e) => e.type === 'scan');
    assert.is(raw?.scannerId, 'virtual:demo');
    assert.is(raw?.station, 'desk-9');
    assert.is(await scannersTool(['inject', 'X', '--url', http.base, '--key', 'wrong-key-wrong-key'], () => {}), 2, 'bad key refused (exit 2: usage/config)');
    const list = await fetch(`${http.base}/v1/scanners`, { headers: AUTH });
    assert.equal(await list.json(), { scanners: [] });
    const noAuth = await fetch(`${http.base}/v1/scanners`);
    assert.is(noAuth.status, 401);
    await noAuth.text();
  } finally {
    await http.close();
    await scanning.stop();
  }
});

needs(socatMissing())('end to end: a scan written into a pty scanner arrives verified on /v1/scans with its id and STM number', async () => {
  const dir = freshDir();
  const pair = new PtyPair(path.join(dir, 'scanner'), path.join(dir, 'host'));
  await import('node:fs').then((fs) => fs.mkdirSync(dir, { recursive: true }));
  await pair.plug();
  const verifier = new FakeVerifier();
  const scanning = await startScanning(
    { site, scanners: [{ driver: 'serial', path: pair.devicePath, station: 'reg-3', name: 'Registration 3' }], scannerAutoDetect: false, scan: { dedupeWindowMs: 1000, streamBuffer: 100 } },
    { verifier, log: memoryLogger(), stateDir: dir },
  );
  const http = await httpApp({ ...scanning.routeDeps, auth: bearer });
  try {
    const listed = (await (await fetch(`${http.base}/v1/scanners`, { headers: AUTH })).json()) as { scanners: Array<Record<string, unknown>> };
    assert.is(listed.scanners.length, 1);
    const s = listed.scanners[0]!;
    assert.is(s.scannerId, `serial:${pair.devicePath}`);
    assert.is(s.state, 'open');
    assert.is(s.station, 'reg-3');
    assert.match(String(s.termId), /^3502A0001STMA\d{4}$/);
    const printed: string[] = [];
    assert.is(await scannersTool(['list', '--url', http.base, '--key', KEY], (l) => printed.push(l)), 0);
    assert.ok(printed.join('\n').includes(String(s.scannerId)) && printed.join('\n').includes(String(s.termId)), 'tools list shows id and STM');
    const sse = await openSse(`${http.base}/v1/scans?scanner=${encodeURIComponent(String(s.scannerId))}`, AUTH);
    const code = healthCode(42);
    pair.write(`]Q1${code}\r`);
    pair.write(`]Q1${code}\r`); // the scanner read it twice: suppressed
    await sse.until((ev) => ev.some((e) => e.event === 'result'));
    const result = JSON.parse(sse.events.find((e) => e.event === 'result')!.data);
    assert.is(result.scannerId, s.scannerId);
    assert.is(result.termId, s.termId);
    assert.is(result.station, 'reg-3');
    assert.is(verifier.requests.length, 1);
    assert.equal(verifier.requests[0], { ehealthCode: code, termId: s.termId, scannerId: s.scannerId, treatmentCode: undefined });
    const scan = JSON.parse(sse.events.find((e) => e.event === 'scan')!.data);
    assert.is(scan.symbology, ']Q1');
    sse.close();
  } finally {
    await http.close();
    await scanning.stop();
    await pair.unplug();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
