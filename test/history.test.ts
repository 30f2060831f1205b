import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from './helpers/skip.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { History, type HistorySample } from '../src/ops/history.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { EhcError } from '../src/errors.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';

function fakeResult(decided_by: string) {
  return { ret_code: '0000', decided_by } as never;
}

test('history: per-minute points and events survive a reopen; old days are removed; disk stays bounded', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ehc-history-'));
  let now = Date.parse('2026-12-01T15:59:10Z'); // 23:59 CST: the next minute is another China day
  let sample: HistorySample = { upstreamUp: true, upstreamMs: 12, cardUp: true, outboxDepth: 3, delivered: 10, scanners: [{ id: 'serial:/dev/x', name: 'Desk 1', up: true }] };
  const open = () => History.open({ dir, clock: () => now, sample: async () => sample, sampleMs: 3_600_000 });
  try {
    let h = open();
    const obs = h.observer();
    await h.tick();
    obs.verified!(fakeResult('local'), {} as never, 4);
    obs.verified!(fakeResult('cross-domain'), {} as never, 40);
    obs.rejected!(new EhcError('2001', 'expired'), {} as never, 1);
    sample = { ...sample, upstreamUp: false, delivered: 15, scanners: [{ id: 'serial:/dev/x', name: 'Desk 1', up: false }] };
    await h.tick();
    now += 60_000; // next minute, next CST day
    sample = { ...sample, upstreamUp: true };
    await h.tick();
    await h.close();
    assert.equal(readdirSync(dir).sort(), ['20261201.jsonl', '20261202.jsonl'], 'one file per China day');

    h = open(); // a restart
    const s = h.series(1);
    const i = s.t.indexOf(Math.floor(Date.parse('2026-12-01T15:59:00Z') / 1000));
    assert.ok(i >= 0, 'the minute before the restart is there');
    assert.equal([s.verified[i], s.rejected[i], s.byRoute.local![i], s.byRoute['cross-domain']![i], s.byCode['2001']![i]], [2, 1, 1, 1, 1]);
    assert.equal([s.p50[i], s.p99[i], s.outboxDepth[i], s.drained[i], s.upstreamUp[i]], [4, 40, 3, 5, 0]);
    assert.equal(
      s.events.map((e) => e.kind),
      ['appliance.started', 'upstream.down', 'scanner.unplugged', 'upstream.up', 'appliance.stopped', 'appliance.started'],
    );
    assert.match(s.events.find((e) => e.kind === 'scanner.unplugged')!.text_zh, /扫码器 Desk 1/);
    await h.close();

    // nine days later: only retainDays (8) of files are kept
    now += 9 * 86_400_000;
    h = open();
    await h.tick();
    await h.close();
    assert.equal(readdirSync(dir), [`${new Date(now + 8 * 3600_000).toISOString().slice(0, 10).replace(/-/g, '')}.jsonl`]);
    // a full day of points is a few hundred KB at most
    h = open();
    for (let m = 0; m < 1440; m++) {
      now += 60_000;
      h.observer().verified!(fakeResult('local'), {} as never, 3);
      if (m % 60 === 0) await h.tick();
    }
    await h.close();
    const biggest = Math.max(...readdirSync(dir).map((f) => statSync(path.join(dir, f)).size));
    assert.ok(biggest < 400_000, `${biggest} bytes for a day`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const browser = needs(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);
browser('charts render in headless Chromium with history that survived a restart; screenshot kept in test-output/', async () => {
  const state = mkdtempSync(path.join(tmpdir(), 'ehc-history-app-'));
  const adjust = (doc: Record<string, any>) => {
    doc.stateDir = state;
  };
  try {
    const first = await testAppliance(adjust);
    try {
      for (let i = 0; i < 4; i++) {
        const code = await issueHealthCode(first.appliance.card, { identity: { idType: '01', idNo: '350203199001011234' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + (i === 3 ? -600_000 : 300_000)) });
        await first.post({ ehealth_code: code });
      }
    } finally {
      await first.stop();
    }
    const second = await testAppliance(adjust);
    const { chromium } = await import('playwright-core');
    const profile = mkdtempSync(path.join(tmpdir(), 'ehc-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1200, height: 1400 },
    });
    try {
      const h = (await (await fetch(`${second.appliance.url}/v1/history?hours=1`, { headers: { Authorization: `Bearer ${API_KEY}` } })).json()) as { verified: Array<number | null>; rejected: Array<number | null>; events: Array<{ kind: string }> };
      const sum = (a: Array<number | null>) => a.reduce<number>((n, v) => n + (v ?? 0), 0);
      assert.is(sum(h.verified), 3, 'verifications from before the restart');
      assert.is(sum(h.rejected), 1);
      assert.equal(h.events.map((e) => e.kind).filter((k) => k.startsWith('appliance')), ['appliance.started', 'appliance.stopped', 'appliance.started']);
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${second.appliance.url}/status?interval=500&hours=1`);
      await page.fill('#key', API_KEY);
      await page.click('#login button[type=submit]');
      await page.waitForSelector('#history:not([hidden])');
      await page.waitForFunction(() => document.querySelectorAll('#history .chart canvas').length >= 4);
      const charts = await page.$$eval('#history .chart canvas', (cs) => cs.map((c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]));
      assert.ok(charts.every(([w, hgt]) => w! > 100 && hgt! > 50), JSON.stringify(charts));
      const events = await page.$$eval('#events tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
      assert.is(events.filter((e) => e.includes('设备启动')).length, 2, events.join(' | '));
      assert.match((await page.textContent('#history-range'))!, /CST/);
      mkdirSync(path.join(root, 'test-output'), { recursive: true });
      const shot = path.join(root, 'test-output', 'status-history.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`  screenshot: ${shot}`);
      assert.equal(errors, []);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      await second.stop();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test.run();
