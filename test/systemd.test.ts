/**
 * sd_notify from the main process over a real AF_UNIX datagram socket: the test binds the socket
 * systemd would (NOTIFY_SOCKET) and reads what the notifier sends. The watchdog runs with a short
 * WATCHDOG_USEC; a deliberately blocked event loop must make it withhold a ping.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createNotifier, statusLine, statusSummary, watchdogIntervalFromEnv } from '../src/platform/systemd.ts';
import { memoryLogger } from '../src/platform/log.ts';

const require = createRequire(import.meta.url);
const unix = require('unix-dgram') as {
  createSocket(type: 'unix_dgram', listener: (msg: Buffer) => void): { bind(p: string): void; close(): void; on(e: string, l: (x: unknown) => void): void };
};

/** A stand-in for systemd's notify socket: collects datagrams. */
function fakeSystemd() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-notify-'));
  const socketPath = path.join(dir, 'notify');
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  const sock = unix.createSocket('unix_dgram', (msg) => {
    messages.push(msg.toString('utf8'));
    for (const w of waiters.splice(0)) w();
  });
  sock.on('error', (e) => {
    throw e;
  });
  sock.bind(socketPath);
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r));
  };
  return {
    socketPath,
    messages,
    until,
    close() {
      sock.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('without NOTIFY_SOCKET every call is a no-op and no watchdog runs', () => {
  const log = memoryLogger();
  const n = createNotifier(log, { env: {} });
  assert.is(n.enabled, false);
  assert.is(n.watchdog.intervalMs, null);
  n.ready('up');
  n.status('x');
  n.watchdog.start();
  n.stopping();
  n.close();
  n.close();
  assert.equal(log.lines, []);
});

test('READY, STATUS and STOPPING arrive as datagrams in order; STATUS is one masked line', async () => {
  const sd = fakeSystemd();
  try {
    const n = createNotifier(memoryLogger(), { env: { NOTIFY_SOCKET: sd.socketPath } });
    assert.is(n.enabled, true);
    n.ready('card ok, upstream ok, outbox 0');
    n.ready('a second READY is not sent');
    n.status('patient 110101199003077777\ncalled 13912345678');
    n.stopping('flushing outbox');
    n.extendTimeout(2500);
    await sd.until(() => sd.messages.length >= 4);
    assert.equal(sd.messages, [
      'READY=1\nSTATUS=card ok, upstream ok, outbox 0\n',
      'STATUS=patient 1101**********7777 called 139****5678\n',
      'STOPPING=1\nSTATUS=flushing outbox\n',
      'EXTEND_TIMEOUT_USEC=2500000\n',
    ]);
    n.close();
    n.status('after close');
    assert.is(sd.messages.length, 4);
  } finally {
    sd.close();
  }
});

test('a send to a missing socket is reported once in the log, never thrown', () => {
  const log = memoryLogger();
  const n = createNotifier(log, { env: { NOTIFY_SOCKET: path.join(tmpdir(), 'ehc-no-such-dir', 'notify') } });
  n.status('one');
  n.status('two');
  n.close();
  const warnings = log.lines.filter((l) => l.includes('systemd notify send failed'));
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!, /ENOENT|-2/);
});

test('WATCHDOG_USEC is honoured only for this pid, and can be turned off by config', () => {
  assert.is(watchdogIntervalFromEnv({ WATCHDOG_USEC: '20000000' }, 42), 20000);
  assert.is(watchdogIntervalFromEnv({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '42' }, 42), 20000);
  assert.is(watchdogIntervalFromEnv({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '43' }, 42), null);
  assert.is(watchdogIntervalFromEnv({ WATCHDOG_USEC: 'x' }, 42), null);
  assert.is(watchdogIntervalFromEnv({}, 42), null);
  const n = createNotifier(memoryLogger(), { env: { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '20000000' }, watchdog: false });
  assert.is(n.watchdog.intervalMs, null);
  n.close();
  const m = createNotifier(memoryLogger(), { env: { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '20000000' } });
  assert.is(m.watchdog.intervalMs, 10000, 'pings at WATCHDOG_USEC/2');
  m.close();
});

test('statusLine strips control characters and bounds the length', () => {
  assert.is(statusLine('a\r\nb\tc\u0000d'), 'a b c d');
  assert.is(statusLine('x'.repeat(1000)).length, 400);
});

test('statusSummary turns the appliance status into card/upstream/outbox words', () => {
  assert.is(
    statusSummary({ card: { ok: true, driver: 'soft', detail: 'ready' }, upstream: { reachable: true, latencyMs: 12.4, url: 'x' }, outbox: { depth: 3, state: 'backoff', dead: 1, full: false, oldestAgeSeconds: 42.2 } }),
    'card soft ok; upstream up 12 ms; outbox 3 queued (backoff), 1 dead, oldest 42 s',
  );
  assert.is(statusSummary({ card: { ok: false, driver: 'sdf', detail: 'device removed' }, upstream: { reachable: false, lastError: 'ECONNREFUSED' } }), 'card sdf FAIL device removed; upstream down (ECONNREFUSED)');
  assert.is(statusSummary({ outbox: { depth: 0, state: 'idle', dead: 0, full: false } }), 'outbox 0 queued (idle)');
  assert.is(statusSummary({}), 'running');
});

test('the watchdog pings while the loop is healthy and withholds a ping after a stall', async () => {
  const sd = fakeSystemd();
  const log = memoryLogger();
  // 400 ms watchdog: ping every 200 ms, a stall beyond 100 ms withholds the next ping
  const n = createNotifier(log, { env: { NOTIFY_SOCKET: sd.socketPath, WATCHDOG_USEC: '400000' } });
  try {
    assert.is(n.watchdog.intervalMs, 200);
    n.watchdog.start();
    n.watchdog.start();
    const pings = () => sd.messages.filter((m) => m === 'WATCHDOG=1\n').length;
    await sd.until(() => pings() >= 3);
    assert.is(n.watchdog.skipped, 0);
    // block the event loop for 600 ms, far beyond the 100 ms bound
    const before = pings();
    const end = Date.now() + 600;
    while (Date.now() < end) {
      /* a stuck handler */
    }
    // the next check sees the stall, withholds that ping, and pings again once the loop is healthy
    await sd.until(() => pings() > before);
    assert.ok(n.watchdog.skipped >= 1, 'a ping was withheld');
    assert.ok(log.lines.some((l) => l.includes('watchdog ping withheld')), 'the stall is logged');
    n.watchdog.stop();
    const stopped = pings();
    await new Promise((r) => setTimeout(r, 500));
    assert.is(pings(), stopped, 'no ping after stop');
  } finally {
    n.close();
    sd.close();
  }
});

test.run();
