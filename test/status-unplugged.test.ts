import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from './helpers/skip.ts';
import { PtyPair, socatMissing } from './helpers/pty-pair.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { collectStatus, DownSince, healthOf, problemsOf, type StatusReport } from '../src/ops/status.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'tools', 'ehc-edge.ts');
const CHROMIUM = '/usr/bin/chromium';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: root, env: { ...process.env, LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 15000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('problems are never empty when the badge is not green, and each has a reason', () => {
  const since = new DownSince();
  const now = new Date('2026-12-02T02:42:00Z');
  type Parts = Parameters<typeof problemsOf>[0];
  const base: Parts = {
    card: { ok: true, driver: 'soft', detail: 'ready' },
    upstream: { reachable: true, url: 'u' },
    outbox: { depth: 0, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false },
    scanners: [],
    certificates: [],
  };
  const opts = { since, now, outboxWarnDepth: 100, certWarnDays: 30 };
  assert.equal(problemsOf(base, opts), []);
  assert.is(healthOf(problemsOf(base, opts)), 'ok');
  const cases: Array<[Partial<Parts>, RegExp, 'degraded' | 'down']> = [
    [{ card: { ok: false, driver: 'sdf', detail: 'device removed' } }, /crypto card down: device removed/, 'down'],
    [{ upstream: { reachable: false, url: 'u', lastError: 'ECONNREFUSED' } }, /home card system unreachable: ECONNREFUSED/, 'degraded'],
    [{ outbox: { depth: 150, bytes: 1, oldestAgeSeconds: 5, dead: 0, full: false } }, /outbox holds 150 records/, 'degraded'],
    [{ outbox: { depth: 10, bytes: 1, oldestAgeSeconds: 5, dead: 0, full: true } }, /outbox full/, 'down'],
    [{ outbox: { depth: 0, bytes: 1, oldestAgeSeconds: null, dead: 2, full: false } }, /2 dead letters/, 'degraded'],
    [{ audit: { lastSeq: 1, lastTime: null, files: 1, bytes: 1, failures: 3, lastError: 'EIO' } }, /audit not writing: 3 failed appends \(EIO\)/, 'degraded'],
    [{ audit: { lastSeq: 1, lastTime: null, files: 1, bytes: 1, failures: 0, lastError: null, pruneFailures: 2, lastPruneError: 'card busy' } }, /audit retention failing: 2 failed prunes \(card busy\)/, 'degraded'],
    [{ certificates: [{ name: 'upstream client', notAfter: '2026-12-12T00:00:00.000Z', daysLeft: 9 }] }, /certificate upstream client expires in 9 days/, 'degraded'],
    [{ scanners: [{ id: 'serial:/dev/ttyS1', name: 'Desk 1', state: 'unplugged', since: '2026-12-02T02:40:00.000Z', seenBefore: true, configured: true, lastScanAt: null }] }, /scanner Desk 1 \(serial:\/dev\/ttyS1\) unplugged/, 'degraded'],
    [{ scanners: [{ id: 'hid-keyboard:usb-1', state: 'refused', lastScanAt: null }] }, /refused: keyboard mode/, 'degraded'],
    [{ scanners: [{ id: 'serial:/dev/ttyS2', state: 'error', detail: 'EACCES', lastScanAt: null }] }, /error: EACCES/, 'degraded'],
  ];
  for (const [change, reason, health] of cases) {
    const found = problemsOf({ ...base, ...change }, opts);
    assert.is(found.length, 1, String(reason));
    assert.match(found[0]!.reason, reason);
    assert.ok(found[0]!.reason_zh.length > 0, 'a Chinese reason too');
    assert.is(healthOf(found), health, String(reason));
  }
  // an outage keeps the time it started while it lasts, and forgets it once over
  const down = { ...base, upstream: { reachable: false, url: 'u' } };
  assert.is(problemsOf(down, opts)[0]!.since, now.toISOString());
  assert.is(problemsOf(down, { ...opts, now: new Date(now.getTime() + 60_000) })[0]!.since, now.toISOString());
  problemsOf(base, opts);
  assert.is(problemsOf(down, { ...opts, now: new Date(now.getTime() + 120_000) })[0]!.since, new Date(now.getTime() + 120_000).toISOString());
});

test('collectStatus: ok exactly when problems is empty', async () => {
  const s = await collectStatus({
    version: 'x',
    startedAt: new Date(),
    site: { orgCode: 'o', termId: 't' },
    scanners: () => [],
    card: async () => ({ ok: true, driver: 'soft', detail: 'ready' }),
    upstream: async () => ({ reachable: false, url: 'u' }),
    outbox: () => ({ depth: 0, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false }),
  });
  assert.is(s.ok, false);
  assert.is(s.health, 'degraded');
  assert.is(s.problems.length, 1);
});

const serial = needs(socatMissing());
const browser = needs(socatMissing() ?? (existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`));

async function unpluggedAppliance() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-unplug-'));
  const pair = new PtyPair(path.join(dir, 'desk1'), path.join(dir, 'desk1-host'));
  await pair.plug();
  const t = await testAppliance((doc) => {
    doc.scanners = [{ driver: 'serial', path: pair.devicePath, name: 'Desk 1 挂号', station: 'desk-1' }];
  });
  const status = async () => (await (await fetch(`${t.appliance.url}/v1/status`, { headers: { Authorization: `Bearer ${API_KEY}` } })).json()) as StatusReport;
  await until('the scanner opens', async () => ((await status()).scanners.find((s) => s.name === 'Desk 1 挂号')?.state === 'ready' ? true : undefined));
  const unpluggedAt = Date.now();
  await pair.unplug();
  const s = await until('the scanner is listed as unplugged', async () => {
    const st = await status();
    return st.scanners.find((x) => x.name === 'Desk 1 挂号' && x.state === 'unplugged') ? st : undefined;
  });
  return {
    t,
    s,
    unpluggedAt,
    status,
    async close() {
      await t.stop();
      await pair.unplug();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

serial('an unplugged configured pty scanner: listed in /v1/status with since when, a reason in problems, and `ehc-edge status` exits 1 saying so', async () => {
  const a = await unpluggedAppliance();
  try {
    const desk = a.s.scanners.find((x) => x.name === 'Desk 1 挂号')!;
    assert.is(desk.configured, true);
    assert.is(desk.seenBefore, true);
    assert.ok(Math.abs(Date.parse(desk.since!) - a.unpluggedAt) < 5000, 'unplugged since about when it was pulled');
    assert.is(a.s.ok, false);
    assert.is(a.s.health, 'degraded');
    const p = a.s.problems.find((x) => x.component === 'scanner')!;
    assert.match(p.reason, /^scanner Desk 1 挂号 \(serial:.*desk1\) unplugged$/);
    assert.match(p.reason_zh, /扫码器 Desk 1 挂号 .* 已拔出/);
    assert.is(p.since, desk.since);
    const [zh, en, json] = await Promise.all([
      cli(['status', '--url', a.t.appliance.url, '--key', API_KEY]),
      cli(['status', '--url', a.t.appliance.url, '--key', API_KEY, '--lang', 'en']),
      cli(['status', '--url', a.t.appliance.url, '--key', API_KEY, '--json']),
    ]);
    assert.is(zh.code, 1, zh.stderr);
    assert.match(zh.stdout, /降级/);
    assert.match(zh.stdout, /扫码器 Desk 1 挂号 .* 已拔出 \(自 \d\d:\d\d CST\)/);
    assert.is(en.code, 1);
    assert.match(en.stdout, /DEGRADED/);
    assert.match(en.stdout, /scanner Desk 1 挂号 .* unplugged \(since \d\d:\d\d CST\)/);
    assert.match(en.stdout, /Desk 1 挂号 +desk-1 +serial +unplugged since \d\d:\d\d CST/);
    assert.is(json.code, 1);
    assert.is(JSON.parse(json.stdout).scanners.find((x: { name?: string }) => x.name === 'Desk 1 挂号').state, 'unplugged');
    const list = await cli(['scanners', 'list', '--url', a.t.appliance.url, '--key', API_KEY, '--json']);
    assert.is(list.code, 1, 'scanners list: a configured scanner is absent: ' + list.stderr);
    assert.is(JSON.parse(list.stdout)[0]?.state, 'absent', list.stdout + list.stderr);
  } finally {
    await a.close();
  }
});

browser('the status page shows the unplugged scanner and the reason, in Chinese by default, without overflowing 600 px; screenshot', async () => {
  const { chromium } = await import('playwright-core');
  const a = await unpluggedAppliance();
  const profile = mkdtempSync(path.join(tmpdir(), 'ehc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 600, height: 1000 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${a.t.appliance.url}/status?interval=500`);
    await page.fill('#key', API_KEY);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#scanners td.unplugged');
    const state = (await page.textContent('#scanners td.unplugged'))!;
    assert.match(state, /^已拔出 自 \d\d:\d\d:\d\d CST$/);
    assert.is(await page.getAttribute('#overall', 'data-health'), 'degraded');
    assert.is((await page.textContent('#overall'))!.trim(), '降级');
    assert.match((await page.textContent('#problems'))!, /扫码器 Desk 1 挂号 .* 已拔出/);
    assert.is(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than 600 px`);
    mkdirSync(path.join(root, 'test-output'), { recursive: true });
    const shot = path.join(root, 'test-output', 'status-unplugged.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`  screenshot: ${shot}`);
    // English on request
    await page.click('#lang');
    await page.waitForFunction(() => document.getElementById('overall')!.textContent === 'degraded');
    assert.match((await page.textContent('#scanners td.unplugged'))!, /^unplugged since \d\d:\d\d:\d\d CST$/);
    assert.equal(errors, []);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await a.close();
  }
});

test.run();
