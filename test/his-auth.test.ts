import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { keyMatcher, FailureTracker } from '../src/his/auth.ts';
import { adminAuth } from '../src/his/admin-auth.ts';
import type { AuditEvent } from '../src/ops/audit.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { listen } from './helpers/serve.ts';
import { hisTestApp, routesBehindKey } from './helpers/his-app.ts';

const HIS_KEY = 'his-key-0123456789abcdef';
const HIS_KEY2 = 'his-key-second-0000000000';
const ADMIN_KEY = 'admin-key-0123456789abcdef';
const sm3hex = (s: string) => createHash('sm3').update(s).digest('hex');

function app(events: AuditEvent[], clock?: () => number) {
  const audit = { record: (e: AuditEvent) => void events.push(e) };
  const logger = memoryLogger();
  // the production HIS app (createHisApp), with a test route behind its key check
  const a = hisTestApp({
    apiKeys: [HIS_KEY, `sm3:${sm3hex(HIS_KEY2)}`],
    audit,
    logger,
    extensions: [
      routesBehindKey((app, auth) => {
        app.get('/v1/ping', auth, (c) => c.json({ ok: true }));
        app.get('/v1/boom', auth, () => {
          throw new Error('handler failure passes through');
        });
        app.use('/admin/*', adminAuth({ apiKeys: [ADMIN_KEY], maxFailedAttempts: 3, hisApiKeys: [HIS_KEY], audit, logger, clock, lockoutMs: 60_000 }));
        app.post('/admin/scanners', (c) => c.json({ registered: true }, 201));
      }),
    ],
  });
  return { a, logger };
}

const bearer = (k: string) => ({ Authorization: `Bearer ${k}` });

test('HIS keys: clear and sm3: forms admit, anything else is 401 with ret_code 1010 and audited', async () => {
  const events: AuditEvent[] = [];
  const srv = await listen(app(events).a);
  try {
    assert.is((await fetch(`${srv.url}/v1/ping`, { headers: bearer(HIS_KEY) })).status, 200);
    assert.is((await fetch(`${srv.url}/v1/ping`, { headers: bearer(HIS_KEY2) })).status, 200);
    const none = await fetch(`${srv.url}/v1/ping`);
    assert.is(none.status, 401);
    assert.is((await none.json()).ret_code, '1010');
    const wrong = await fetch(`${srv.url}/v1/ping`, { headers: bearer('not-the-key-0000000000') });
    assert.is(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /invalid_token/);
    const bad = await fetch(`${srv.url}/v1/ping`, { headers: { Authorization: 'Bearer a b c' } });
    assert.is(bad.status, 401, 'a malformed header is a failed check like any other (the contract lists 401)');
    // an admin key is not a HIS key
    assert.is((await fetch(`${srv.url}/v1/ping`, { headers: bearer(ADMIN_KEY) })).status, 401);
    const failed = events.filter((e) => e.action === 'auth.failed');
    // audited once per address and window (the throttle counts the rest: src/his/auth-throttle.ts)
    assert.equal(failed.map((e) => (e.detail as { why: string }).why), ['missing']);
    assert.is(failed[0]!.client, '127.0.0.1');
    assert.is(failed[0]!.route, '/v1/ping');
    assert.ok(!JSON.stringify(events).includes('not-the-key'), 'the presented key is not in the trail');
    // errors from handlers after a passed check are the port's own (8009, logged), not an auth failure
    const boom = await fetch(`${srv.url}/v1/boom`, { headers: bearer(HIS_KEY) });
    assert.is(boom.status, 500);
    assert.is((await boom.json()).ret_code, '8009');
    assert.is(events.filter((e) => e.action === 'auth.failed').length, 1, 'a failing handler is not an auth failure');
  } finally {
    await srv.close();
  }
});

test('admin: separate keys, per-client lockout after maxFailedAttempts, every admitted request audited', async () => {
  const events: AuditEvent[] = [];
  let now = 1_000_000;
  const srv = await listen(app(events, () => now).a);
  const post = (k?: string) => fetch(`${srv.url}/admin/scanners`, { method: 'POST', headers: k ? bearer(k) : {} });
  try {
    assert.is((await post(ADMIN_KEY)).status, 201);
    const adm = events.find((e) => e.action === 'admin.request');
    assert.equal(adm?.detail, { method: 'POST', status: 201 });
    assert.is((await post(HIS_KEY)).status, 401, 'a HIS key is not an admin key');
    assert.is((await post('wrong-admin-key-000000')).status, 401);
    assert.is((await post()).status, 401);
    // third failure locked the client: even the right key is refused now
    const locked = await post(ADMIN_KEY);
    assert.is(locked.status, 429);
    assert.is(locked.headers.get('retry-after'), '60');
    assert.is((await post(ADMIN_KEY)).status, 429);
    assert.ok(events.some((e) => e.action === 'admin.lockout'));
    assert.is(events.filter((e) => e.action === 'admin.locked-refused').length, 1, 'one record per lockout');
    now += 61_000;
    assert.is((await post(ADMIN_KEY)).status, 201, 'lockout ends');
    assert.is(events.filter((e) => e.action === 'admin.auth-failed').length, 3);
  } finally {
    await srv.close();
  }
});

test('admin: no keys configured means 403; a key shared with HIS is refused at start', async () => {
  const a = new Hono();
  a.use('/admin/*', adminAuth({ apiKeys: [], maxFailedAttempts: 3 }));
  a.post('/admin/x', (c) => c.text('no'));
  const res = await a.request('/admin/x', { method: 'POST', headers: bearer(ADMIN_KEY) });
  assert.is(res.status, 403);
  assert.throws(() => adminAuth({ apiKeys: [HIS_KEY], maxFailedAttempts: 3, hisApiKeys: [`sm3:${sm3hex(HIS_KEY)}`] }), /must not also be a HIS key/);
});

test('keyMatcher compares digests of every key; FailureTracker caps audit records per client and minute', () => {
  const m = keyMatcher(['k-one-0000000000000', `sm3:${sm3hex('k-two-0000000000000')}`]);
  assert.ok(m('k-one-0000000000000'));
  assert.ok(m('k-two-0000000000000'));
  assert.not.ok(m('k-one-000000000000'));
  assert.not.ok(m(''));
  let now = 0;
  const t = new FailureTracker(2, () => now);
  assert.equal([t.note('a').audit, t.note('a').audit, t.note('a').audit, t.note('b').audit], [true, true, false, true]);
  now = 60_000;
  assert.equal(t.note('a'), { audit: true, suppressedBefore: 1 });
});

test.run();
