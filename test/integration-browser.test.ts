/**
 * The HIS integration kit as a browser HIS meets it: CORS by allow-list, single-use stream tickets,
 * and the desk page. The cross-origin part runs a page on ANOTHER origin (its own HTTP server) in
 * headless Chromium: on the allow-list it verifies a code and receives the scan stream through a
 * ticket; off the list the browser refuses it the answers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from './helpers/skip.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { StreamTickets } from '../src/his/stream-tickets.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';
import { freshCodes } from './helpers/fresh-codes.ts';
import { openSse } from './helpers/sse.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const AUTH = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
const SIM_PERSON = { idType: '01', idNo: '350322199008207715' }; // known to the simulator: 陈俊海

test('stream tickets: single use, bound to their filter, expire, bounded in number', () => {
  let now = 1_000_000;
  const book = new StreamTickets({ ttlSeconds: 30, maxOutstanding: 3, clock: () => now });
  const a = book.issue({ station: 'desk-1' });
  assert.match(a.ticket, /^[A-Za-z0-9_-]{43}$/);
  assert.is(a.expiresAt, now + 30_000);
  assert.equal(book.redeem(a.ticket, { station: 'desk-1' }), { ok: true, filter: { station: 'desk-1' } });
  assert.equal(book.redeem(a.ticket, { station: 'desk-1' }), { ok: false, why: 'unknown' }, 'spent');
  const b = book.issue({ station: 'desk-1' });
  assert.equal(book.redeem(b.ticket, { station: 'desk-2' }), { ok: false, why: 'filter' });
  assert.equal(book.redeem(b.ticket, { station: 'desk-1' }), { ok: false, why: 'unknown' }, 'a refused ticket is spent too');
  const c = book.issue({});
  assert.equal(book.redeem(c.ticket, { scanner: 'x' }), { ok: false, why: 'filter' }, 'an unfiltered ticket cannot open a filtered stream');
  const d = book.issue({});
  now += 30_000;
  assert.equal(book.redeem(d.ticket, {}), { ok: false, why: 'expired' });
  const many = [book.issue({}), book.issue({}), book.issue({}), book.issue({})];
  assert.is(book.outstanding, 3);
  assert.equal(book.redeem(many[0]!.ticket, {}), { ok: false, why: 'unknown' }, 'the oldest is dropped first');
  assert.is(book.redeem(many[3]!.ticket, {}).ok, true);
});

test('codes for one person issued in the same second are one text; freshCodes never hands out a text twice', () => {
  const sim = new SimCardSystem({ ehcin: '3501A0002' });
  const second = Math.floor(Date.now() / 1000) * 1000;
  const at = [second + 100, second + 900, second + 900];
  const plain = at.map((t) => sim.issueCode(SIM_PERSON, { expiresAt: new Date(t + 300_000) }));
  assert.is(plain[1], plain[0], 'the cause: the expiry is encoded in whole seconds, nothing else varies');
  let i = 0;
  const fresh = freshCodes(sim, () => at[i++]!);
  const codes = at.map(() => fresh(SIM_PERSON, 300_000));
  assert.is(new Set(codes).size, 3, 'three scans, three texts');
  assert.is(codes[0], plain[0], 'the first is the code as issued');
  for (const c of codes) {
    const expires = sim.decryptValidity(c.split(':')[2]!).getTime();
    assert.ok(expires >= second + 300_000 && expires <= second + 303_000, 'valid for about as long as asked');
  }
});

test('desk stream: a second code for the same person within a second still reaches the desk (the CI flake of the desk page)', async () => {
  const t = await testAppliance();
  const second = Math.floor(Date.now() / 1000) * 1000;
  // the listed-origin page's code and the desk's code, issued 800 ms apart inside one second
  const at = [second + 100, second + 900];
  let i = 0;
  const fresh = freshCodes(new SimCardSystem({ ehcin: t.config.simulator.ehcin! }), () => at[i++]!);
  const base = t.appliance.url;
  const ticket = (await (await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: '{"station":"desk-1"}' })).json()) as { stream_url: string };
  const desk = await openSse(`${base}${ticket.stream_url}`);
  try {
    const inject = async (text: string) =>
      (await (await fetch(`${base}/v1/scans/inject`, { method: 'POST', headers: AUTH, body: JSON.stringify({ text, scanner: 'kiosk1', station: 'desk-1' }) })).json()) as { status: string; resultEventId?: number };
    const listed = await inject(fresh(SIM_PERSON, 300_000));
    const atDesk = await inject(fresh(SIM_PERSON, 300_000));
    assert.equal([listed.status, atDesk.status], ['verified', 'verified'], 'not suppressed as a duplicate read');
    await desk.until((evs) => evs.filter((e) => e.event === 'result').length === 2);
    assert.equal(desk.events.filter((e) => e.event === 'result').map((e) => Number(e.id)), [listed.resultEventId, atDesk.resultEventId]);
  } finally {
    desk.close();
    await t.stop();
  }
});

/** Reads an SSE response until `want` matches the text so far (or the stream ends). */
async function readUntil(res: Response, want: RegExp, limitMs = 10_000): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const timer = setTimeout(() => reader.cancel().catch(() => {}), limitMs);
  try {
    while (!want.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  return text;
}

test('HTTP: a ticket needs the key, opens one stream of its station, is never logged; CORS only for listed origins', async () => {
  const t = await testAppliance((doc) => {
    doc.his.cors = { origins: ['http://his.example:8443'] };
    doc.his.viewerKeys = ['viewer-key-for-tickets-000001'];
  });
  try {
    const base = t.appliance.url;
    assert.is((await fetch(`${base}/v1/stream-tickets`, { method: 'POST' })).status, 401, 'no key, no ticket');
    const viewer = await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: { authorization: 'Bearer viewer-key-for-tickets-000001' } });
    assert.is(viewer.status, 401, 'a viewer key cannot get a ticket (a ticket opens the stream with identities)');
    const issued = await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: JSON.stringify({ station: 'desk-1' }) });
    assert.is(issued.status, 201);
    const body = (await issued.json()) as { ticket: string; stream_url: string; expires_in_seconds: number };
    assert.is(body.expires_in_seconds, 30);
    assert.match(body.stream_url, /^\/v1\/scans\?station=desk-1&ticket=/);
    assert.is((await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: '{"station":""}' })).status, 400);
    assert.is((await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: '{"foo":1}' })).status, 400);

    // the wrong filter spends the ticket and is refused
    const other = (await (await fetch(`${base}/v1/stream-tickets`, { method: 'POST', headers: AUTH, body: '{"station":"desk-1"}' })).json()) as { ticket: string };
    const wrong = await fetch(`${base}/v1/scans?station=desk-2&ticket=${other.ticket}`);
    assert.is(wrong.status, 401);
    assert.match(((await wrong.json()) as { ret_msg: string }).ret_msg, /another station/);

    const stream = await fetch(`${base}${body.stream_url}`);
    assert.is(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
    const first = readUntil(stream, /event: result/);
    const code = new SimCardSystem({ ehcin: t.config.simulator.ehcin! }).issueCode(SIM_PERSON, { expiresAt: new Date(Date.now() + 300_000) });
    await (await fetch(`${base}/v1/scans/inject`, { method: 'POST', headers: AUTH, body: JSON.stringify({ text: code, scanner: 'kiosk1', station: 'desk-1' }) })).text();
    const text = await first;
    assert.match(text, /event: result/);
    assert.match(text, /"station":"desk-1"|desk-1/);

    const again = await fetch(`${base}${body.stream_url}`);
    assert.is(again.status, 401, 'a ticket opens one stream only');
    assert.match(((await again.json()) as { ret_msg: string }).ret_msg, /unknown or already used/);
    assert.is((await fetch(`${base}/v1/scanners?ticket=${body.ticket}`)).status, 401, 'a ticket opens the stream, nothing else');
    assert.is((await fetch(`${base}/v1/scans?ticket=not-a-ticket`)).status, 401);

    const logged = JSON.stringify(t.log.lines ?? t.log);
    assert.not.ok(logged.includes(body.ticket), 'tickets are never logged');
    assert.not.ok(logged.includes(other.ticket));

    // CORS: listed origin gets its origin back, an unlisted one nothing; preflight before auth
    const pre = await fetch(`${base}/v1/verify`, { method: 'OPTIONS', headers: { origin: 'http://his.example:8443', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    assert.is(pre.status, 204);
    assert.is(pre.headers.get('access-control-allow-origin'), 'http://his.example:8443');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    assert.is(pre.headers.get('access-control-allow-credentials'), null, 'no credentials: keys travel in a header, never a cookie');
    const preBad = await fetch(`${base}/v1/verify`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.is(preBad.headers.get('access-control-allow-origin'), null);
    const plain = await fetch(`${base}/v1/status`, { headers: { ...AUTH, origin: 'http://his.example:8443' } });
    assert.is(plain.headers.get('access-control-allow-origin'), 'http://his.example:8443');
    assert.match(plain.headers.get('vary') ?? '', /Origin/);
  } finally {
    await t.stop();
  }
});

test('CORS is off by default: no origin is allowed', async () => {
  const t = await testAppliance();
  try {
    const res = await fetch(`${t.appliance.url}/v1/status`, { headers: { ...AUTH, origin: 'http://127.0.0.1:1' } });
    assert.is(res.status, 200);
    assert.is(res.headers.get('access-control-allow-origin'), null);
  } finally {
    await t.stop();
  }
});

/** A page of "the HIS" on its own origin: verifies a code, takes a ticket, follows the stream. */
const HIS_PAGE = `<!doctype html><meta charset="utf-8"><title>HIS</title>
<pre id="out">starting</pre>
<script>
const q = new URLSearchParams(location.search);
const base = q.get('appliance'), key = q.get('key'), code = q.get('code');
const out = document.getElementById('out');
const say = (s) => { out.textContent += '\\n' + s; };
(async () => {
  try {
    const v = await fetch(base + '/v1/verify', { method: 'POST', headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: code }) });
    const r = await v.json();
    say('verify ' + v.status + ' ' + r.ret_code + ' ' + r.decided_by);
    const t = await (await fetch(base + '/v1/stream-tickets', { method: 'POST', headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' }, body: '{"station":"desk-1"}' })).json();
    const es = new EventSource(base + t.stream_url);
    es.addEventListener('result', (ev) => { const d = JSON.parse(ev.data); say('stream result ' + d.ret_code + ' ' + d.station); es.close(); });
    es.onopen = async () => {
      say('stream open');
      await fetch(base + '/v1/scans/inject', { method: 'POST', headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' }, body: JSON.stringify({ text: code, scanner: 'kiosk1', station: 'desk-1' }) });
    };
  } catch (e) { say('blocked ' + e.name); }
})();
</script>`;

async function pageServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(HIS_PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { origin, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const chromium = needs(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);
chromium('headless Chromium: a page on a listed origin verifies and streams via a ticket; an unlisted origin is refused; the desk page shows the patient masked and a refusal big', async () => {
  const { chromium: browser } = await import('playwright-core');
  const listed = await pageServer();
  const unlisted = await pageServer();
  const t = await testAppliance((doc) => {
    doc.his.cors = { origins: [listed.origin] };
  });
  const profile = mkdtempSync(path.join(tmpdir(), 'ehc-chromium-'));
  const context = await browser.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 700 },
  });
  try {
    mkdirSync(path.join(root, 'test-output'), { recursive: true });
    const sim = new SimCardSystem({ ehcin: t.config.simulator.ehcin! });
    // every scan below is a new text: the desk's code, issued about a second after this one, was once
    // the SAME text (same person, same expiry second) and the pipeline dropped it as a duplicate read
    const fresh = freshCodes(sim);
    const code = fresh(SIM_PERSON, 300_000);
    const query = (origin: string) => `${origin}/?appliance=${encodeURIComponent(t.appliance.url)}&key=${API_KEY}&code=${encodeURIComponent(code)}`;

    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(query(listed.origin));
    await page.waitForFunction(() => /stream result/.test(document.getElementById('out')!.textContent!), undefined, { timeout: 20_000 });
    const shown = (await page.textContent('#out')) ?? '';
    assert.match(shown, /verify 200 0000 cross-domain/);
    assert.match(shown, /stream open/);
    assert.match(shown, /stream result 0000 desk-1/);
    await page.screenshot({ path: path.join(root, 'test-output', 'cors-listed-origin.png') });

    const refused = await context.newPage();
    await refused.goto(query(unlisted.origin));
    await refused.waitForFunction(() => /blocked/.test(document.getElementById('out')!.textContent!), undefined, { timeout: 20_000 });
    const refusedText = (await refused.textContent('#out')) ?? '';
    assert.match(refusedText, /blocked TypeError/);
    assert.not.match(refusedText, /verify 200/);
    await refused.screenshot({ path: path.join(root, 'test-output', 'cors-unlisted-origin.png') });

    // the desk page, as a registration window uses it
    const desk = await context.newPage();
    await desk.goto(`${t.appliance.url}/desk?station=desk-1`);
    await desk.waitForSelector('#login:not([hidden])');
    await desk.fill('#key', API_KEY);
    await desk.click('#login button[type=submit]');
    await desk.waitForFunction(() => /live/.test(document.getElementById('live')!.textContent!));
    // the pipeline's outcome first: a scan suppressed as a duplicate, or refused upstream, fails here at once
    const inject = async (text: string, want: 'verified' | 'failed') => {
      const answer = await fetch(`${t.appliance.url}/v1/scans/inject`, { method: 'POST', headers: AUTH, body: JSON.stringify({ text, scanner: 'kiosk1', station: 'desk-1' }) }).then((r) => r.text());
      assert.match(answer, `"status":"${want}"`, `inject answered ${answer}`);
      return answer;
    };
    // on a timeout, say what the page showed and what the appliance answered (CI keeps only the message)
    const deskState = async () =>
      JSON.stringify(await desk.evaluate(() => ({
        live: document.getElementById('live')?.textContent,
        refused: document.getElementById('refused')?.hidden === false ? document.getElementById('refused')?.textContent : undefined,
        scanner: document.getElementById('scanner')?.textContent,
      })));
    const waitDesk = async (selector: string, answer: string) => {
      try {
        await desk.waitForSelector(selector, { timeout: 30_000 });
      } catch (e) {
        const status = await fetch(`${t.appliance.url}/v1/status`, { headers: AUTH }).then((r) => r.text()).catch((err) => String(err));
        throw new Error(`${selector} not shown: ${(e as Error).message.split('\n')[0]}; desk ${await deskState()}; inject answered ${answer}; status ${status.slice(0, 600)}`);
      }
    };
    await waitDesk('#who:not([hidden])', await inject(fresh(SIM_PERSON, 300_000), 'verified'));
    assert.is((await desk.textContent('#name'))?.trim(), '陈*海');
    assert.is((await desk.textContent('#id-no'))?.trim(), '3503**********7715');
    const html = await desk.content();
    assert.not.ok(html.includes(SIM_PERSON.idNo) || html.includes('陈俊海'), 'the desk page shows masked data only');
    await desk.screenshot({ path: path.join(root, 'test-output', 'desk-page.png'), fullPage: true });
    await waitDesk('#refused:not([hidden])', await inject(fresh(SIM_PERSON, -600_000), 'failed'));
    assert.match((await desk.textContent('#err-code')) ?? '', /2001/);
    assert.ok(await desk.isHidden('#who'), 'a refusal replaces the previous patient');
    assert.match((await desk.textContent('#live')) ?? '', /live/, 'a refused scan does not drop the stream');
    await desk.screenshot({ path: path.join(root, 'test-output', 'desk-page-refused.png'), fullPage: true });
    console.log(`  screenshots: ${path.join(root, 'test-output')}/{cors-listed-origin,cors-unlisted-origin,desk-page,desk-page-refused}.png`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await t.stop();
    await listed.close();
    await unlisted.close();
  }
});

test.run();
