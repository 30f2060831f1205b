import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { Hono } from 'hono';
import { ScanHub, ID_BLOCK } from '../src/scan/hub.ts';
import { registerScanRoutes } from '../src/his/scans-route.ts';
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

test.run();
