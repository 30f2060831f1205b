import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono, type MiddlewareHandler } from 'hono';
import WebSocket from 'ws';
import { ScanHub, ID_BLOCK } from '../src/scan/hub.ts';
import { StreamFanout, type Batch, type StreamSink } from '../src/scan/fanout.ts';
import { registerScanRoutes } from '../src/his/scans-route.ts';
import { attachScanWebSocket } from '../src/his/scan-websocket.ts';
import { StreamTickets } from '../src/his/stream-tickets.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { startHisServer } from '../src/his/server.ts';
import { makePki, opensslMissing } from './helpers/pki.ts';
import { needs } from './helpers/skip.ts';
import { openStateStore } from '../src/store/state.ts';
import { listen } from './helpers/serve.ts';
import { openSse } from './helpers/sse.ts';
import { tempDir } from './helpers/tmp.ts';

async function persistentHub(stateDir: string, clock: () => number, capacity = 8) {
  const store = await openStateStore(stateDir);
  return ScanHub.persistent(capacity, {
    reservedUpTo: store.data.stream?.reservedUpTo ?? 0,
    reserve: async (upTo) => {
      store.data.stream = { reservedUpTo: upTo };
      await store.write();
    },
  }, clock);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

test('stream ids keep growing across a restart with the clock set back an hour; the old Last-Event-ID gets the ring and a gap', async () => {
  const t = tempDir('ehc-hub-');
  try {
    const now = Date.now();
    const before = await persistentHub(t.dir, () => now);
    for (let i = 0; i < 5; i++) before.publish('scan', 'serial:/a', 'desk-1', { i });
    const lastBefore = before.lastId;
    // the appliance restarts with the system clock one hour behind
    const after = await persistentHub(t.dir, () => now - 3_600_000);
    assert.ok(after.oldestId > lastBefore, `new ids ${after.oldestId} continue after ${lastBefore}`);
    for (let i = 0; i < 5; i++) after.publish('scan', 'serial:/a', 'desk-1', { i });
    const resumed = after.since(lastBefore);
    assert.is(resumed.events.length, 5, 'the client that reconnects with its old id gets what the ring holds');
    assert.is(resumed.gap, true, 'and is told it may have missed events in between');
    // a third start continues after the whole reserved block, not after the clock
    const third = await persistentHub(t.dir, () => 0);
    assert.is(third.oldestId, after.oldestId + ID_BLOCK + 1);
    // an id this hub never issued (from another appliance, or the future): the ring and a gap
    const foreign = after.since(after.lastId + 1_000_000);
    assert.is(foreign.gap, true);
    assert.is(foreign.events.length, 5);
  } finally {
    t.cleanup();
  }
});

test('the hub reserves the next id block before the current one runs out, and waits for the first reservation', async () => {
  const reserved: number[] = [];
  const hub = await ScanHub.persistent(4, { reservedUpTo: 0, reserve: async (upTo) => void reserved.push(upTo) }, () => 1_000);
  const first = hub.oldestId;
  assert.equal(reserved, [first + ID_BLOCK], 'the first block is reserved before the first event');
  for (let i = 0; i < ID_BLOCK / 2 + 1; i++) hub.publish('scan', 's', undefined, {});
  await Promise.resolve();
  assert.equal(reserved, [first + ID_BLOCK, first + 2 * ID_BLOCK], 'the next one when half is spent');
});

test('fan-out serialises each event once, however many subscribers', async () => {
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub, maxSubscribers: 100 });
  const srv = await listen(app);
  const clients = await Promise.all(Array.from({ length: 20 }, () => openSse(`${srv.url}/v1/scans`)));
  try {
    await until(() => hub.subscribers === 20, '20 subscribers');
    let serialised = 0;
    hub.publish('scan', 's', undefined, { probe: { toJSON: () => (serialised++, 'p') } });
    await Promise.all(clients.map((c) => c.until((e) => e.some((x) => x.event === 'scan'))));
    assert.is(serialised, 1);
    assert.ok(clients.every((c) => c.events.find((x) => x.event === 'scan')?.data === clients[0]!.events.find((x) => x.event === 'scan')?.data));
  } finally {
    clients.forEach((c) => c.close());
    await srv.close();
  }
});

test('scan.maxSubscribers: one stream more is answered 503 with Retry-After', async () => {
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub, maxSubscribers: 2 });
  const srv = await listen(app);
  const a = await openSse(`${srv.url}/v1/scans`);
  const b = await openSse(`${srv.url}/v1/scans`);
  try {
    const res = await fetch(`${srv.url}/v1/scans`);
    assert.is(res.status, 503);
    assert.is(res.headers.get('retry-after'), '5');
    assert.is(((await res.json()) as { ret_code: string }).ret_code, '8009');
    a.close();
    await until(() => hub.subscribers === 1, 'a closed');
    const c = await openSse(`${srv.url}/v1/scans`);
    assert.is(c.status, 200);
    c.close();
  } finally {
    a.close();
    b.close();
    await srv.close();
  }
});

test('a reader that stops reading is dropped after scan.subscriberBuffer events, with a gap event, not buffered without end', async () => {
  const hub = new ScanHub(64, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub, subscriberBuffer: 16 });
  const srv = await listen(app);
  const socket = connect({ host: '127.0.0.1', port: srv.port });
  const received: Buffer[] = [];
  try {
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /v1/scans HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await until(() => hub.subscribers === 1, 'subscribed');
    socket.pause(); // the reader stops reading: the kernel buffers fill, then the server's writes wait
    const big = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 2000 && hub.subscribers > 0; i++) {
      hub.publish('scan', 's', undefined, { big });
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.is(hub.subscribers, 0, 'the slow reader was dropped');
    socket.on('data', (d: Buffer) => received.push(d));
    socket.resume();
    await until(() => Buffer.concat(received).includes('event: gap'), 'gap event at the end of what it gets');
    const text = Buffer.concat(received).toString('utf8');
    assert.match(text, /"reason":"slow-reader"/);
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('a WebSocket reader that stops reading is closed with 1013 once its send buffer passes the limit; the others go on', async () => {
  const hub = new ScanHub(64, 1);
  const tickets = new StreamTickets();
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const stop = attachScanWebSocket(server, { hub, tickets, maxSubscribers: 10, maxBufferedBytes: 256 * 1024 });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/scans/ws?ticket=`;
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url + tickets.issue({}).ticket);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const slow = await open();
  const fast = await open();
  let fastGot = 0;
  fast.on('message', () => fastGot++);
  const closed = new Promise<number>((r) => slow.once('close', (code) => r(code)));
  try {
    await until(() => hub.subscribers === 2, 'both subscribed');
    (slow as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const big = 'x'.repeat(32 * 1024);
    let published = 0;
    for (let i = 0; i < 2000 && hub.subscribers === 2; i++) {
      hub.publish('scan', 's', undefined, { big });
      published++;
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.is(hub.subscribers, 1, 'the slow socket was dropped');
    await until(() => fastGot >= published, 'the reading socket got every event');
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    assert.is(await closed, 1013);
  } finally {
    slow.terminate();
    fast.terminate();
    stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('the keep-alive comment reaches an idle SSE reader (one timer for all readers)', async () => {
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub, keepAliveMs: 50 });
  const srv = await listen(app);
  const ac = new AbortController();
  try {
    const res = await fetch(`${srv.url}/v1/scans`, { signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': keep-alive')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /^id: 0\nevent: ready\ndata: \{"lastEventId":0\}\n\n/);
  } finally {
    ac.abort();
    hub.streams.configure({ keepAliveMs: 15_000 });
    await srv.close();
  }
});

test('a stream opened without Last-Event-ID begins with ready at the newest id: a reconnect with it before any other event misses nothing (SSE and WebSocket)', async () => {
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub });
  const srv = await listen(app);
  const tickets = new StreamTickets();
  const wsServer = createServer();
  await new Promise<void>((r) => wsServer.listen(0, '127.0.0.1', () => r()));
  const stopWs = attachScanWebSocket(wsServer, { hub, tickets, maxSubscribers: 10 });
  const wsUrl = (query = '') => `ws://127.0.0.1:${(wsServer.address() as AddressInfo).port}/v1/scans/ws?ticket=${tickets.issue({}).ticket}${query}`;
  const wsOpen = (url: string) =>
    new Promise<{ ws: WebSocket; messages: Array<{ id?: number; event: string; data: Record<string, unknown> }> }>((resolve, reject) => {
      const ws = new WebSocket(url);
      const messages: Array<{ id?: number; event: string; data: Record<string, unknown> }> = [];
      ws.on('message', (m) => messages.push(JSON.parse(String(m))));
      ws.once('open', () => resolve({ ws, messages }));
      ws.once('error', reject);
    });
  const open: Array<{ close(): void }> = [];
  try {
    for (let i = 0; i < 3; i++) hub.publish('scan', 's', 'desk-1', { i }); // before the page came: ids 1..3
    const sse = await openSse(`${srv.url}/v1/scans?station=desk-1`);
    open.push(sse);
    const ws = await wsOpen(wsUrl());
    open.push(ws.ws);
    await sse.until((evs) => evs.length === 1);
    await until(() => ws.messages.length === 1, 'the WebSocket ready message');
    assert.equal(sse.events.map((e) => [e.id, e.event, e.data]), [['3', 'ready', '{"lastEventId":3}']], 'SSE: its id is the newest so far');
    assert.equal(ws.messages, [{ id: 3, event: 'ready', data: { lastEventId: 3 } }], 'WebSocket: the same position');
    // the connection drops before any event; results come in while the page is away
    sse.close();
    ws.ws.close();
    await until(() => hub.subscribers === 0, 'both gone');
    const missed = [hub.publish('result', 's', 'desk-1', { n: 1 }).id, hub.publish('result', 's', 'desk-1', { n: 2 }).id];
    const resumed = await openSse(`${srv.url}/v1/scans?station=desk-1`, { 'Last-Event-ID': sse.events[0]!.id! });
    open.push(resumed);
    const wsResumed = await wsOpen(wsUrl(`&lastEventId=${ws.messages[0]!.data.lastEventId}`));
    open.push(wsResumed.ws);
    await resumed.until((evs) => evs.length === 2);
    await until(() => wsResumed.messages.length === 2, 'the WebSocket replay');
    assert.equal(resumed.events.map((e) => [e.event, Number(e.id)]), missed.map((id) => ['result', id]), 'SSE: what came in between, and no ready (it has its position)');
    assert.equal(wsResumed.messages.map((m) => [m.event, m.id]), missed.map((id) => ['result', id]), 'WebSocket: the same');
    const next = hub.publish('result', 's', 'desk-1', { n: 3 }).id;
    await resumed.until((evs) => evs.length === 3);
    assert.is(Number(resumed.events[2]!.id), next, 'then the live events, ids above the ready one');
  } finally {
    open.forEach((o) => o.close());
    stopWs();
    await new Promise<void>((r) => wsServer.close(() => r()));
    await srv.close();
  }
});

needs(opensslMissing())('over HTTPS (his.tls) the stream is the same chunked event stream, written on the TLS socket', async () => {
  const t = tempDir('ehc-fanout-tls-');
  const pki = makePki(t.dir);
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  registerScanRoutes(app, { hub });
  const srv = await startHisServer(app as unknown as Hono, { listen: '127.0.0.1:0', tls: { cert: pki.serverCert, key: pki.serverKey } });
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(srv.url).port), ca: readFileSync(pki.ca), servername: 'localhost' });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
  try {
    await new Promise<void>((r) => socket.once('secureConnect', () => r()));
    socket.write('GET /v1/scans HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await until(() => hub.subscribers === 1, 'subscribed over TLS');
    hub.publish('scan', 's', 'desk-1', { n: 1 });
    hub.publish('result', 's', 'desk-1', { n: 2 });
    await until(() => text.includes('event: result'), 'events over TLS');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Transfer-Encoding: chunked/i);
    // the body decodes as chunks: size line, exactly that many bytes, CRLF
    let rest = body;
    const chunks: string[] = [];
    while (rest.length) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      const data = Buffer.from(rest.slice(nl + 2), 'utf8').subarray(0, size).toString('utf8');
      chunks.push(data);
      rest = rest.slice(nl + 2 + data.length);
      assert.is(rest.slice(0, 2), '\r\n', 'each chunk ends with CRLF');
      rest = rest.slice(2);
    }
    assert.is(chunks[0], 'id: 0\nevent: ready\ndata: {"lastEventId":0}\n\n');
    assert.match(chunks.slice(1).join(''), /^id: 1\nevent: scan\n[^]*\n\nid: 2\nevent: result\n/);
  } finally {
    socket.destroy();
    await srv.close();
    t.cleanup();
  }
});

test('a result published after the stream route read hub.lastId, before its reader joined the fan-out, reaches that reader once', async () => {
  const hub = new ScanHub(16, 1);
  const app = new Hono();
  // the auth middleware wraps the handler: after next() the handler has read hub.lastId (seenAt) and the
  // reader is not yet a sink (that happens once the whole chain has run: src/his/raw-response.ts)
  let between: (() => void) | undefined;
  const auth: MiddlewareHandler = async (_c, next) => {
    await next();
    between?.();
  };
  registerScanRoutes(app, { hub, auth });
  const srv = await listen(app);
  // a reader already there, so the event's fan-out round is pending when the new reader joins
  const early = await openSse(`${srv.url}/v1/scans?station=desk-1`);
  let inWindow = 0;
  between = () => {
    between = undefined;
    inWindow = hub.publish('result', 'virtual:kiosk1', 'desk-1', { ret_code: '0000', n: 1 }).id;
  };
  const late = await openSse(`${srv.url}/v1/scans?station=desk-1`);
  try {
    assert.ok(inWindow > 0, 'published in the window');
    assert.is(hub.subscribers, 2, 'the response head came after the reader joined (the page shows "live" only then)');
    const next = hub.publish('result', 'virtual:kiosk1', 'desk-1', { ret_code: '0000', n: 2 }).id;
    const results = (evs: { event: string; id?: string }[]) => evs.filter((e) => e.event === 'result').map((e) => Number(e.id));
    await late.until((evs) => results(evs).includes(next));
    await early.until((evs) => results(evs).includes(next));
    assert.equal(results(late.events), [inWindow, next], 'from the ring, then the fan-out: nothing lost, nothing twice');
    assert.equal(results(early.events), [inWindow, next]);
  } finally {
    early.close();
    late.close();
    await srv.close();
  }
});

function fakeSink(filter: StreamSink['filter'] = {}, encoding = 'sse'): StreamSink & { batches: Batch[] } {
  const batches: Batch[] = [];
  return { filter, encoding, sentUpTo: 0, batches, write: (b) => void batches.push(b), keepAlive: () => {} };
}

test('a few readers get each event on the next turn of the loop; more than a slice of readers wait the coalescing window', async () => {
  const turn = () => new Promise<void>((r) => setImmediate(r));
  /** a fan-out of `readers` SSE sinks, a slice of 4, the 20 ms window */
  const fanoutOf = (readers: number) => {
    const hub = new ScanHub(64, 1);
    const fanout = new StreamFanout(hub, { slice: 4, coalesceMs: 20 });
    fanout.encoding('sse', (ev) => ev.wire!);
    for (let i = 0; i < readers; i++) assert.ok(fanout.add(fakeSink()));
    return { hub, fanout };
  };
  // a site's few desks: no added delay (the round is the next immediate, before this test's own)
  const { hub, fanout: few } = fanoutOf(3);
  hub.publish('scan', 's1', 'desk-1', { n: 1 });
  await turn();
  assert.is(few.writes, 3, 'written on the next turn');
  few.clear();
  // more sinks than a slice: the round waits for the window (a timer cannot fire before this immediate)
  const { hub: hub2, fanout: many } = fanoutOf(10);
  hub2.publish('scan', 's1', 'desk-1', { n: 1 });
  await turn();
  assert.is(many.writes, 0, 'not yet: coalescing');
  hub2.publish('result', 's1', 'desk-1', { n: 2 });
  await until(() => many.writes === 10, 'every reader written');
  assert.is(many.rounds, 1, 'the scan and its result in one round');
  many.clear();
});

test('a round of events is one Buffer shared by every sink that sees the same events, written a slice of sinks per turn', async () => {
  const hub = new ScanHub(64, 1);
  const fanout = new StreamFanout(hub, { slice: 64, coalesceMs: 0 });
  fanout.encoding('sse', (ev) => ev.wire!);
  const all = Array.from({ length: 300 }, () => fakeSink());
  const desk1 = Array.from({ length: 3 }, () => fakeSink({ station: 'desk-1' }));
  for (const s of [...all, ...desk1]) assert.ok(fanout.add(s));
  assert.is(fanout.add(fakeSink(), 303), false, 'the limit counts every sink');
  hub.publish('scan', 's1', 'desk-1', { n: 1 });
  hub.publish('scan', 's2', 'desk-2', { n: 2 });
  hub.publish('result', 's1', 'desk-1', { n: 3 });
  // something else the event loop has to do (a verification arriving) gets its turn inside the round
  let writtenWhenOtherWorkRan = -1;
  await new Promise<void>((r) => setImmediate(() => setImmediate(() => ((writtenWhenOtherWorkRan = fanout.writes), r()))));
  assert.ok(writtenWhenOtherWorkRan > 0 && writtenWhenOtherWorkRan < 303, `other work ran between slices (${writtenWhenOtherWorkRan} of 303 written)`);
  await until(() => fanout.writes === 303, 'every sink written');
  assert.is(fanout.rounds, 1, 'three events published together: one round');
  assert.ok(all.every((s) => s.batches.length === 1 && s.batches[0]!.count === 3 && s.batches[0]!.joined === all[0]!.batches[0]!.joined), 'one shared Buffer for the unfiltered sinks');
  assert.ok(desk1.every((s) => s.batches[0]!.count === 2 && s.batches[0]!.joined === desk1[0]!.batches[0]!.joined), 'one for the desk-1 sinks');
  assert.is(all[0]!.batches[0]!.joined.toString(), [1, 2, 3].map((id) => hub.since(id - 1).events[0]!.wire!.toString()).join(''));
  assert.ok(all.every((s) => s.sentUpTo === hub.lastId));
  // a sink that already has part of the next round (it replayed the ring) gets only the rest
  const late = fakeSink();
  late.sentUpTo = hub.lastId + 1;
  fanout.add(late);
  hub.publish('scan', 's1', 'desk-1', { n: 4 });
  hub.publish('scan', 's1', 'desk-1', { n: 5 });
  await until(() => late.batches.length === 1 && all[0]!.batches.length === 2, 'second round');
  assert.is(late.batches[0]!.count, 1);
  assert.is(all[0]!.batches[1]!.count, 2);
  fanout.clear();
});

test('the stream on a real appliance: CORS and cache headers of a ticketed browser stream, Last-Event-ID, one subscriber limit for SSE and WebSocket', async () => {
  const t = await testAppliance((doc) => {
    doc.his.cors = { origins: ['http://his.example:8443'] };
    doc.his.websocket = true;
    doc.scan = { ...(doc.scan ?? {}), maxSubscribers: 2 };
  });
  const open: Array<{ close(): void }> = [];
  try {
    const base = t.appliance.url;
    const auth = { authorization: `Bearer ${API_KEY}` };
    const ticket = async () => ((await (await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"station":"desk-1"}' })).json()) as { stream_url: string; websocket_url: string });
    const ac = new AbortController();
    open.push({ close: () => ac.abort() });
    const browser = await fetch(`${base}${(await ticket()).stream_url}`, { headers: { origin: 'http://his.example:8443' }, signal: ac.signal });
    assert.is(browser.status, 200);
    assert.is(browser.headers.get('access-control-allow-origin'), 'http://his.example:8443');
    assert.match(browser.headers.get('vary') ?? '', /Origin/);
    assert.match(browser.headers.get('access-control-expose-headers') ?? '', /Retry-After/);
    assert.is(browser.headers.get('content-type'), 'text/event-stream');
    assert.is(browser.headers.get('cache-control'), 'no-cache');
    assert.is(browser.headers.get('x-accel-buffering'), 'no');
    const reader = browser.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /^id: \d+\nevent: ready\n/);

    const inject = (scanner: string) => fetch(`${base}/v1/scans/inject`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ text: `not-a-health-card-${scanner}-${Math.random()}`, scanner, station: 'desk-1' }) }).then((r) => r.json() as Promise<{ scanEventId?: number }>);
    const first = await inject('a');
    await inject('b');
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${(await ticket()).websocket_url}`);
    open.push({ close: () => ws.close() });
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    await until(() => t.appliance.scanning.hub.subscribers === 2, 'SSE and WebSocket both counted');
    const full = await fetch(`${base}/v1/scans`, { headers: { ...auth, 'last-event-id': String(first.scanEventId ?? 0) } });
    assert.is(full.status, 503, 'a third stream is refused: one limit for both kinds');
    assert.is(full.headers.get('retry-after'), '5');
    const thirdUrl = `${base.replace(/^http/, 'ws')}${(await ticket()).websocket_url}`;
    const wsRefused = await new Promise<number>((resolve) => {
      const third = new WebSocket(thirdUrl);
      third.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      third.once('error', () => resolve(-1));
    });
    assert.is(wsRefused, 503, 'the WebSocket is refused too');
    ws.close();
    await until(() => t.appliance.scanning.hub.subscribers === 1, 'the WebSocket left');
    // a reconnect with Last-Event-ID gets what came after it, from the ring
    const resumed = await openSse(`${base}/v1/scans`, { ...auth, 'last-event-id': String(first.scanEventId) });
    open.push(resumed);
    await resumed.until((e) => e.some((x) => x.event === 'scan'));
    assert.ok(resumed.events.every((e) => Number(e.id) > first.scanEventId!), 'only what came after the id');
    assert.is(resumed.events.filter((e) => e.event === 'scan').length, 1);
    await reader.cancel();
  } finally {
    open.forEach((o) => o.close());
    await t.stop();
  }
});

test.run();
