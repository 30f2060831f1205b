import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Hono } from 'hono';
import { AuthThrottle, throttled } from '../src/his/auth-throttle.ts';
import { apiKeyAuth } from '../src/his/auth.ts';
import type { AuditEvent } from '../src/ops/audit.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { listen } from './helpers/serve.ts';
import { requestFrom } from './helpers/from-address.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';

const KEY = 'his-key-0123456789abcdef';

function throttledApp(o: { max: number; global: number; clock: () => number }) {
  const events: AuditEvent[] = [];
  const logger = memoryLogger();
  const throttle = new AuthThrottle({ maxFailures: o.max, windowSeconds: 60, globalMaxFailures: o.global, audit: { record: (e) => void events.push(e) }, logger, clock: o.clock });
  const app = new Hono();
  app.use('/v1/*', throttled(throttle, 'his', apiKeyAuth({ keys: [KEY] })));
  app.get('/v1/ping', (c) => c.json({ ok: true }));
  return { app, events, logger, throttle };
}

const authLines = (lines: string[]) => lines.filter((l) => /authentication/.test(l));

test('key guessing on a real appliance: 429 + Retry-After after his.authThrottle.maxFailures, O(1) log lines for 300 guesses', async () => {
  const t = await testAppliance((doc) => (doc.his.authThrottle = { maxFailures: 5, windowSeconds: 60, globalMaxFailures: 1000 }));
  try {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 300; i++) {
      const res = await fetch(`${t.appliance.url}/v1/verify`, { method: 'POST', headers: { authorization: `Bearer guess-${String(i).padStart(20, '0')}`, 'content-type': 'application/json' }, body: '{}' });
      statuses.push(res.status);
      if (res.status === 429) retryAfter ??= res.headers.get('retry-after') ?? undefined;
      await res.arrayBuffer();
    }
    assert.equal(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(statuses.slice(5).every((s) => s === 429), 'every guess after the fifth is refused unchecked');
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
    // the right key from the throttled address waits too (the key is not even looked at) …
    const locked = await fetch(`${t.appliance.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` } });
    assert.is(locked.status, 429);
    // … while another address is not affected
    const other = await requestFrom(`${t.appliance.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` }, localAddress: '127.0.0.2' });
    assert.is(other.status, 200);
    const lines = authLines(t.log.lines);
    assert.ok(lines.length >= 2 && lines.length <= 3, `one line at the first failure, one at throttling: ${lines.length}\n${lines.join('\n')}`);
    assert.match(lines.join('\n'), /"failures":5/);
  } finally {
    await t.stop();
  }
});

test('throttle: sliding window per address, one audit record per window with the count of the previous one', async () => {
  let now = 1_000_000;
  const { app, events, logger } = throttledApp({ max: 3, global: 1000, clock: () => now });
  const srv = await listen(app);
  const get = (key: string, from = '127.0.0.1') => requestFrom(`${srv.url}/v1/ping`, { headers: { authorization: `Bearer ${key}` }, localAddress: from });
  try {
    const first = [];
    for (let i = 0; i < 50; i++) first.push((await get('wrong-key-00000000000')).status);
    assert.equal(first.slice(0, 3), [401, 401, 401]);
    assert.ok(first.slice(3).every((s) => s === 429));
    assert.is((await get(KEY, '127.0.0.3')).status, 200);
    assert.is(events.filter((e) => e.action === 'auth.failed').length, 1);
    assert.is(events.filter((e) => e.action === 'auth.throttled').length, 1);
    // sliding: 59 s after the failures the address is still refused, at 60 s it may try again
    now += 59_000;
    assert.is((await get(KEY)).status, 429);
    now += 1_000;
    assert.is((await get(KEY)).status, 200);
    assert.is((await get('wrong-key-00000000000')).status, 401);
    const summary = events.find((e) => e.action === 'auth.failed.window');
    assert.equal(summary?.detail, { failures: 3, refused: 48, window_s: 60 });
    assert.ok(authLines(logger.lines).length <= 3, authLines(logger.lines).join('\n'));
  } finally {
    await srv.close();
  }
});

test('throttle: the global cap limits many guessing addresses to one attempt each per window, said once', async () => {
  let now = 5_000_000;
  const { app, events, logger, throttle } = throttledApp({ max: 10, global: 6, clock: () => now });
  const srv = await listen(app);
  const get = (key: string, from: string) => requestFrom(`${srv.url}/v1/ping`, { headers: { authorization: `Bearer ${key}` }, localAddress: from });
  try {
    // 3 addresses, 2 failures each: the global cap (6) is reached although none reached its own 10
    for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) for (let i = 0; i < 2; i++) assert.is((await get('wrong-key-00000000000', a)).status, 401);
    assert.ok(throttle.state().global_tripped);
    for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) assert.is((await get('wrong-key-00000000000', a)).status, 429);
    // an address that has not failed still gets its key checked: a desk with the right key works
    assert.is((await get(KEY, '127.0.0.14')).status, 200);
    assert.is((await get('wrong-key-00000000000', '127.0.0.15')).status, 401, 'a new address gets one attempt');
    assert.is((await get('wrong-key-00000000000', '127.0.0.15')).status, 429);
    assert.is(events.filter((e) => e.action === 'auth.global-throttle').length, 1);
    assert.is(logger.lines.filter((l) => /many addresses/.test(l)).length, 1);
    now += 61_000;
    assert.not.ok(throttle.state().global_tripped);
    assert.is((await get(KEY, '127.0.0.11')).status, 200);
  } finally {
    await srv.close();
  }
});

test('a malformed Authorization header is a failed check: 401 1010 (not 400), counted by the throttle', async () => {
  const { app, throttle } = throttledApp({ max: 2, global: 100, clock: Date.now });
  const res = await app.request('/v1/ping', { headers: { authorization: 'Bearer a b c' } });
  assert.is(res.status, 401);
  assert.is(((await res.json()) as { ret_code: string }).ret_code, '1010');
  assert.match(res.headers.get('www-authenticate') ?? '', /invalid_request/);
  assert.is(throttle.state().failures_in_window, 1);
});

test.run();
