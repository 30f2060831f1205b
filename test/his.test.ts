import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHisApp } from '../src/his/app.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { createRegistry } from '../src/platform/metrics.ts';
import { verifyMetrics } from '../src/verify/metrics.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { sm3Hex } from '../src/his/auth.ts';
import { tempDir } from './helpers/tmp.ts';
import { assertOpenApiInSync } from './helpers/openapi.ts';
import { serveApp } from './helpers/serve.ts';
import { FakeUpstream, FOREIGN_EHCIN, LOCAL_EHCIN, MemoryOutbox, PATIENT, softCard } from './helpers/fixtures.ts';

const KEY = 'his-test-key-0123456789';
const HASHED_KEY = 'kiosk-key-abcdefghijkl';

async function setup() {
  const t = tempDir();
  const card = await softCard(t.dir);
  const foreignCard = await softCard(t.dir, 'foreign.json');
  const upstream = new FakeUpstream();
  const registry = createRegistry(false);
  const log = memoryLogger();
  const verifier = new RoutingVerifier({
    card,
    upstream,
    outbox: new MemoryOutbox(),
    settings: { localEhcins: [LOCAL_EHCIN], policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'x', operatorName: 'x', termId: `${LOCAL_EHCIN}STMA0001` },
    observers: [verifyMetrics(registry)],
  });
  let cardOk = true;
  const app = createHisApp({
    verifier,
    apiKeys: [KEY, `sm3:${sm3Hex(HASHED_KEY)}`],
    bodyLimitBytes: 2048,
    log,
    registry,
    status: async () => ({ card: await card.health(), policy: 'local-first' }),
    ready: async () => ({ ok: cardOk, checks: { card: cardOk } }),
  });
  const srv = await serveApp(app);
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${srv.url}/v1/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' || body instanceof ReadableStream ? body : JSON.stringify(body),
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
  const inFive = new Date(Date.now() + 300_000);
  return {
    ...t,
    srv,
    app,
    post,
    upstream,
    log,
    setCard: (ok: boolean) => (cardOk = ok),
    card,
    local: (expiresAt: Date | undefined = inFive) => issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt }),
    foreign: () => issueHealthCode(foreignCard, { identity: PATIENT, ehcappid: `${FOREIGN_EHCIN}APPA0001`, expiresAt: inFive }),
    done: async () => {
      await srv.close();
      t.cleanup();
    },
  };
}

test('POST /v1/verify: 200 with identity, route and serial for a local code', async () => {
  const s = await setup();
  try {
    const res = await s.post({ ehealth_code: await s.local(), treatment_code: '010201', operator_id: 'n01', operator_name: '护士甲' });
    assert.is(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(body.ret_code, '0000');
    assert.is(body.decided_by, 'local');
    assert.is(body.id_no, PATIENT.idNo);
    assert.is(body.code_type, 'dynamic');
    assert.type(body.expires_at, 'string');
    assert.match(String(body.out_verify_no), /^\d{17}[0-9a-z]{15}$/);
    assert.not.ok(s.log.lines.join('\n').includes(PATIENT.idNo), 'no clear ID number in logs');
  } finally {
    await s.done();
  }
});

test('upstream identity fields are passed through for cross-domain codes', async () => {
  const s = await setup();
  try {
    const res = await s.post({ ehealth_code: await s.foreign() });
    const body = (await res.json()) as Record<string, unknown>;
    assert.is(res.status, 200);
    assert.is(body.decided_by, 'cross-domain');
    assert.is(body.user_name, '陈俊海');
    assert.is(body.mobile_phone, '13646032065');
  } finally {
    await s.done();
  }
});

test('code rejections are 422 with the spec code; malformed bodies 400/9001; size 413', async () => {
  const s = await setup();
  try {
    const expired = await s.post({ ehealth_code: await s.local(new Date(Date.now() - 3600_000)) });
    assert.is(expired.status, 422);
    assert.is(((await expired.json()) as { ret_code: string }).ret_code, '2001');
    const illegal = await s.post({ ehealth_code: 'garbage' });
    assert.is(illegal.status, 422);
    assert.is(((await illegal.json()) as { ret_code: string }).ret_code, '2002');
    const [e, , , a] = (await s.local()).split(':');
    const empty = await s.post({ ehealth_code: `${e}:0::${a}` });
    assert.is(((await empty.json()) as { ret_code: string }).ret_code, '2003');
    for (const bad of ['{not json', JSON.stringify({}), JSON.stringify({ ehealth_code: 5 }), JSON.stringify({ ehealth_code: 'x', extra: 1 }), JSON.stringify({ ehealth_code: 'x', treatment_code: '12' })]) {
      const r = await s.post(bad);
      assert.is(r.status, 400, bad);
      assert.is(((await r.json()) as { ret_code: string }).ret_code, '9001');
    }
    const notJson = await s.post({ ehealth_code: 'x' }, { 'content-type': 'text/plain' });
    assert.is(notJson.status, 400);
    const big = await s.post({ ehealth_code: 'x'.repeat(5000) });
    assert.is(big.status, 413);
    assert.is(((await big.json()) as { ret_code: string }).ret_code, '9001');
    // without Content-Length (chunked) the limit is counted on the stream instead of read from the header
    const chunked = (text: string) =>
      s.post(
        new ReadableStream({
          start(c) {
            for (let i = 0; i < text.length; i += 700) c.enqueue(new TextEncoder().encode(text.slice(i, i + 700)));
            c.close();
          },
        }),
      );
    const bigChunked = await chunked(JSON.stringify({ ehealth_code: 'x'.repeat(5000) }));
    assert.is(bigChunked.status, 413);
    assert.is(((await bigChunked.json()) as { ret_code: string }).ret_code, '9001');
    const okChunked = await chunked(JSON.stringify({ ehealth_code: await s.local() }));
    assert.is(okChunked.status, 200);
    assert.is(((await okChunked.json()) as { ret_code: string }).ret_code, '0000');
  } finally {
    await s.done();
  }
});

test('401 without a valid key; sm3:<hex> keys work; health is open, status is not', async () => {
  const s = await setup();
  try {
    const none = await s.post({ ehealth_code: 'x' }, { authorization: '' });
    assert.is(none.status, 401);
    const wrong = await s.post({ ehealth_code: 'x' }, { authorization: 'Bearer nope-nope-nope-nope' });
    assert.is(wrong.status, 401);
    assert.is(((await wrong.json()) as { ret_code: string }).ret_code, '1010');
    const hashed = await s.post({ ehealth_code: await s.local() }, { authorization: `Bearer ${HASHED_KEY}` });
    assert.is(hashed.status, 200);
    assert.is((await fetch(`${s.srv.url}/v1/status`)).status, 401);
    const st = await fetch(`${s.srv.url}/v1/status`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.is(((await st.json()) as { policy: string }).policy, 'local-first');
    assert.is((await fetch(`${s.srv.url}/v1/health`)).status, 200);
    s.setCard(false);
    assert.is((await fetch(`${s.srv.url}/v1/health`)).status, 503);
  } finally {
    await s.done();
  }
});

test('503 with 8004 when the home system is unreachable, 8008 when the card fails', async () => {
  const s = await setup();
  try {
    s.upstream.mode = 'down';
    const off = await s.post({ ehealth_code: await s.foreign() });
    assert.is(off.status, 503);
    assert.is(((await off.json()) as { ret_code: string }).ret_code, '8004');
    const code = await s.local();
    await s.card.close();
    const dead = await s.post({ ehealth_code: code });
    assert.is(dead.status, 503);
    assert.is(((await dead.json()) as { ret_code: string }).ret_code, '8008');
  } finally {
    await s.done();
  }
});

test('/metrics counts verifications by code and route', async () => {
  const s = await setup();
  try {
    await s.post({ ehealth_code: await s.local() });
    await s.post({ ehealth_code: 'garbage' });
    const text = await (await fetch(`${s.srv.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.match(text, /ehc_edge_verify_total\{ret_code="0000",decided_by="local"\} 1/);
    assert.match(text, /ehc_edge_verify_total\{ret_code="2002",decided_by="rejected"\} 1/);
  } finally {
    await s.done();
  }
});

test('the OpenAPI document describes exactly the routes the app serves', async () => {
  const s = await setup();
  try {
    await assertOpenApiInSync(s.app, s.srv.url);
  } finally {
    await s.done();
  }
});

test.run();
