import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { needs } from './helpers/skip.ts';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { opsExtensions } from '../src/his/ops-routes.ts';
import { collectStatus, type ScannerReport, type StatusSources } from '../src/ops/status.ts';
import { AuditTrail } from '../src/ops/audit.ts';
import { UsageStats } from '../src/ops/stats.ts';
import type { OutboxStats } from '../src/store/outbox.ts';
import type { UpstreamHealth } from '../src/protocol/upstream.ts';
import { macCard } from './helpers/mac-card.ts';
import { population, findClearPii } from './helpers/population.ts';
import { listen } from './helpers/serve.ts';
import { hisTestApp } from './helpers/his-app.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const KEY = 'status-test-his-key-0001';
const people = population(5, 3);

/** A live stand-in appliance: real HTTP server, real audit trail and stats, a real loopback upstream. */
async function appliance() {
  const state = mkdtempSync(path.join(tmpdir(), 'ehc-status-'));
  const card = macCard();
  const audit = await AuditTrail.open({ dir: path.join(state, 'audit'), card, macKey: card.index });
  const stats = await UsageStats.open({ file: path.join(state, 'stats', 'usage.json'), site: { orgCode: '45678901-2' }, defaultScene: '010101' });
  for (const [i, p] of people.entries()) {
    await audit.append({ kind: 'verify', action: 'verify', route: i % 2 ? 'upstream' : 'local', scanner: 'serial:/dev/ttyUSB0', terminal: '3502A0001STMA0001', retCode: '0000', subject: { name: p.name, idNo: p.idNo, phone: p.phone } });
  }
  stats.recordError('2001');
  stats.recordError('2001');
  stats.recordError('8004');
  const upstreamServer: Server = createServer((_req, res) => res.end('{"ret_code":"0000"}'));
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstreamServer.address() as { port: number }).port}/ehc`;
  const outbox: OutboxStats = { depth: 3, bytes: 4096, oldestAgeSeconds: 75, dead: 0, full: false };
  const scanners: ScannerReport[] = [
    { id: 'serial:/dev/ttyUSB0', name: '挂号1号窗', station: 'desk-1', driver: 'serial', state: 'ready', lastScanAt: new Date(Date.now() - 12_000).toISOString() },
    { id: 'hid:0c2e:0b61', name: 'kiosk-2', station: 'kiosk', driver: 'hid-pos', state: 'disconnected', lastScanAt: null },
  ];
  const sources: StatusSources = {
    version: '0.1.0',
    startedAt: new Date(Date.now() - 3725_000),
    site: { orgCode: '45678901-2', orgName: '演示医院', termId: '3502A0001STMA0001' },
    scanners: () => scanners,
    card: async () => ({ ok: true, driver: 'soft', detail: 'ready' }),
    upstream: async (): Promise<UpstreamHealth> => {
      const t0 = performance.now();
      try {
        await (await fetch(upstreamUrl)).text();
        return { reachable: true, url: upstreamUrl, latencyMs: performance.now() - t0, checkedAt: new Date().toISOString() };
      } catch (err) {
        return { reachable: false, url: upstreamUrl, lastError: (err as Error).message, checkedAt: new Date().toISOString() };
      }
    },
    outbox: () => outbox,
    errors: (w) => stats.recentErrors(w),
    audit: () => audit.state(),
    recent: (n) => audit.recentVerifications(n),
  };
  // the production HIS app: /v1/status over these sources, the status page and stats as the appliance mounts them
  const app = hisTestApp({
    apiKeys: [KEY],
    status: sources,
    extensions: [
      ...opsExtensions({ stats, site: sources.site, scanners: () => scanners.map((s) => ({ id: s.id, name: s.name, station: s.station })) }),
      { install: (a, ctx) => void a.get('/v1/history', ctx.readAuth, (c) => c.json({ stepSeconds: 60, t: [], verified: [], rejected: [], p50: [], p99: [], outboxDepth: [], drained: [], upstreamUp: [], upstreamMs: [], events: [] })) },
    ],
  });
  const srv = await listen(app);
  return {
    srv,
    outbox,
    scanners,
    sources,
    async close() {
      await srv.close();
      await new Promise((r) => upstreamServer.close(r));
      await audit.close();
      await stats.close();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

test('the page and its assets are served with a strict CSP; /v1/status needs the HIS key', async () => {
  const a = await appliance();
  try {
    const page = await fetch(`${a.srv.url}/status`);
    assert.is(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /\/status\/status\.js/);
    assert.is((await fetch(`${a.srv.url}/status/status.js`)).status, 200);
    assert.is((await fetch(`${a.srv.url}/status/status.css`)).status, 200);
    assert.is((await fetch(`${a.srv.url}/v1/status`)).status, 401);
    const s = await (await fetch(`${a.srv.url}/v1/status`, { headers: { Authorization: `Bearer ${KEY}` } })).json();
    assert.is(s.ok, false, 'a disconnected scanner needs attention');
    assert.is(s.scanners[0].name, '挂号1号窗', 'scanner labels are not mistaken for person names');
    assert.is(s.recent.length, 5);
    assert.equal(findClearPii(JSON.stringify(s), people), []);
    assert.is(s.recent[0].subject.id_no, people[4]!.idNo.slice(0, 4) + '**********' + people[4]!.idNo.slice(-4));
  } finally {
    await a.close();
  }
});

test('collectStatus: a component that hangs or throws is reported, not waited on', async () => {
  const a = await appliance();
  try {
    const s = await collectStatus({ ...a.sources, probeTimeoutMs: 50, card: () => new Promise(() => {}), outbox: () => { throw new Error('db closed'); } });
    assert.is(s.ok, false);
    assert.is(s.card.ok, false);
    const reasons = s.problems.map((p) => p.reason).join(';');
    assert.match(reasons, /card: no answer within 50 ms/);
    assert.match(reasons, /outbox: db closed/);
    assert.is(s.health, 'down', 'no card: down');
  } finally {
    await a.close();
  }
});

const chromium = needs(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);
chromium('renders live in headless Chromium: login, every component, live update, masked data; screenshot', async () => {
  const { chromium } = await import('playwright-core');
  const a = await appliance();
  const profile = mkdtempSync(path.join(tmpdir(), 'ehc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${a.srv.url}/status?interval=500&lang=en`);
    await page.waitForSelector('#login:not([hidden])');
    // a wrong key is refused and the form says so
    await page.fill('#key', 'wrong-key-000000000000');
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error')!.textContent!.includes('refused'));
    await page.fill('#key', KEY);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#dashboard:not([hidden])');
    await page.waitForFunction(() => document.getElementById('card-state')!.textContent === 'ready');
    const text = async (sel: string) => (await page.textContent(sel))?.trim() ?? '';
    assert.is(await text('#overall'), 'degraded');
    assert.match(await text('#problems'), /scanner kiosk-2 \(hid:0c2e:0b61\) disconnected/, 'the reason is shown');
    assert.is(await text('#version'), '0.1.0');
    assert.is(await text('#uptime'), '1 h 2 min');
    assert.is(await text('#upstream-state'), 'reachable');
    assert.match(await text('#upstream-latency'), /^\d+ ms$/);
    assert.is(await text('#outbox-depth'), '3');
    assert.is(await text('#outbox-age'), '1 min 15 s');
    assert.is(await text('#audit-state'), 'writing');
    const scannerRows = await page.$$eval('#scanners tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)));
    assert.is(scannerRows.length, 2);
    assert.equal(scannerRows.map((r) => [r[0], r[3]]), [['挂号1号窗', 'ready'], ['kiosk-2', 'disconnected']]);
    assert.match(scannerRows[0]![4]!, /s ago$/);
    assert.is(scannerRows[1]![4], 'never');
    const errorRows = await page.$$eval('#errors tbody tr', (rows) => (rows as HTMLTableRowElement[]).map((r) => [r.cells[0]!.textContent, r.cells[2]!.textContent]));
    assert.equal(errorRows, [['2001', '2'], ['8004', '1']]);
    const recent = await page.$$eval('#recent tbody tr', (rows) => (rows as HTMLTableRowElement[]).map((r) => [r.cells[4]!.textContent, r.cells[5]!.textContent]));
    assert.is(recent.length, 5);
    for (const [name] of recent) assert.is(Array.from(name!)[1], '*');
    assert.equal(findClearPii(await page.content(), people), [], 'no clear personal data on the page');

    // live: the appliance changes, the page follows without a reload
    a.outbox.depth = 7;
    a.scanners[1] = { ...a.scanners[1]!, state: 'ready', lastScanAt: new Date().toISOString() };
    await page.waitForFunction(() => document.getElementById('outbox-depth')!.textContent === '7');
    await page.waitForFunction(() => document.getElementById('overall')!.textContent === 'healthy');
    assert.match(await text('#live'), /^live · updated/);

    mkdirSync(path.join(root, 'test-output'), { recursive: true });
    const shot = path.join(root, 'test-output', 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`  screenshot: ${shot}`);
    assert.ok(existsSync(shot));
    // the one expected browser error is the 401 of the wrong key tried above
    assert.equal(consoleErrors.filter((e) => !/status of 401/.test(e)), []);

    // the same page on a real appliance (startAppliance: SoftCard, HttpUpstream to the embedded simulator)
    const live = await testAppliance();
    try {
      const person = people[0]!;
      const soon = new Date(Date.now() + 300_000);
      const local = await issueHealthCode(live.appliance.card, { identity: { idType: '01', idNo: person.idNo }, ehcappid: '3502A0001APPA0001', expiresAt: soon });
      assert.is((await live.post({ ehealth_code: local })).status, 200);
      // the simulator's home system knows its own population: one of them, with name and phone
      const simPerson = { idType: '01', idNo: '350322199008207715' };
      const foreign = new SimCardSystem({ ehcin: live.config.simulator.ehcin! }).issueCode(simPerson, { expiresAt: soon });
      assert.is((await live.post({ ehealth_code: foreign })).status, 200);
      const expired = await issueHealthCode(live.appliance.card, { identity: { idType: '01', idNo: person.idNo }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() - 600_000) });
      assert.is((await live.post({ ehealth_code: expired })).body.ret_code, '2001');
      const page2 = await context.newPage();
      await page2.goto(`${live.appliance.url}/status?interval=500&lang=en`);
      await page2.fill('#key', API_KEY);
      await page2.click('#login button[type=submit]');
      await page2.waitForSelector('#dashboard:not([hidden])');
      await page2.waitForFunction(() => document.getElementById('upstream-state')!.textContent === 'reachable' && /ms$/.test(document.getElementById('upstream-latency')!.textContent!));
      await page2.waitForFunction(() => document.querySelectorAll('#recent tbody tr').length >= 3);
      assert.is((await page2.textContent('#card-state'))?.trim(), 'ready');
      assert.match((await page2.textContent('#card-detail')) ?? '', /^soft:/);
      assert.is((await page2.textContent('#outbox-depth'))?.trim(), '0');
      assert.is((await page2.textContent('#audit-state'))?.trim(), 'writing');
      assert.is((await page2.textContent('#scanners tbody'))?.trim(), 'no scanners');
      const liveErrors = await page2.$$eval('#errors tbody tr', (rows) => (rows as HTMLTableRowElement[]).map((r) => r.cells[0]!.textContent));
      assert.equal(liveErrors, ['2001']);
      const routes = await page2.$$eval('#recent tbody tr', (rows) => (rows as HTMLTableRowElement[]).map((r) => [r.cells[2]!.textContent, r.cells[3]!.textContent]));
      assert.equal(routes.slice(0, 3), [['rejected', '2001'], ['cross-domain', '0000'], ['local', '0000']]);
      const html = await page2.content();
      assert.equal(findClearPii(html, people), []);
      assert.not.ok(html.includes(simPerson.idNo) || html.includes('陈俊海'), 'the home system\'s answer is masked too');
      assert.ok(html.includes('陈*海'));
      const shot2 = path.join(root, 'test-output', 'status-page-appliance.png');
      await page2.screenshot({ path: shot2, fullPage: true });
      console.log(`  screenshot: ${shot2}`);
    } finally {
      await live.stop();
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await a.close();
  }
});

test.run();
