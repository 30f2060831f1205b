import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UsageStats, readTermList, onlineOrOffline } from '../src/ops/stats.ts';
import { opsExtensions } from '../src/his/ops-routes.ts';
import type { DecidedBy } from '../src/verify/types.ts';
import { listen } from './helpers/serve.ts';
import { hisTestApp } from './helpers/his-app.ts';

const site = { orgCode: '45678901-2', orgName: '演示医院' };
const file = () => path.join(mkdtempSync(path.join(tmpdir(), 'ehc-stats-')), 'stats', 'usage.json');
const result = (decided_by: DecidedBy, day = '20261125', offline = decided_by === 'offline-local') => ({ decided_by, offline, out_verify_time: `${day}093000` });

test('usecard_scene_list: per day, org, online/offline and treatment step, in the 附录E §6.2.2 shape', async () => {
  const f = file();
  const stats = await UsageStats.open({ file: f, site, defaultScene: '010101', clock: () => new Date(2026, 10, 26, 12) });
  stats.recordVerification(result('local'));
  stats.recordVerification(result('upstream'));
  stats.recordVerification(result('cross-domain'), { treatmentCode: '010105' });
  stats.recordVerification(result('offline-local'));
  stats.recordVerification(result('local', '20261126'), { orgCode: '99999999-9' });
  const page = stats.usecardSceneList();
  assert.is(page.total_count, 4);
  assert.equal(page.rows, [
    { time_region: '20261125', org_code: '45678901-2', online_or_offline: 'offline', usecard_scene: '010101', usecard_scene_num: 1 },
    { time_region: '20261125', org_code: '45678901-2', online_or_offline: 'online', usecard_scene: '010101', usecard_scene_num: 2 },
    { time_region: '20261125', org_code: '45678901-2', online_or_offline: 'online', usecard_scene: '010105', usecard_scene_num: 1 },
    { time_region: '20261126', org_code: '99999999-9', online_or_offline: 'online', usecard_scene: '010101', usecard_scene_num: 1 },
  ]);
  assert.is(stats.usecardSceneList({ from: '20261126' }).total_count, 1);
  assert.is(stats.usecardSceneList({ pageNo: 2, pageSize: 3 }).rows.length, 1);
  await stats.close();
  // persisted, and a restart continues the counts
  assert.ok(JSON.parse(readFileSync(f, 'utf8')).counts['20261125|45678901-2|online|010101'] === 2);
  const again = await UsageStats.open({ file: f, site, defaultScene: '010101', clock: () => new Date(2026, 10, 26, 12) });
  again.recordVerification(result('local'));
  assert.is(again.usecardSceneList({ to: '20261125' }).rows[1]!.usecard_scene_num, 3);
  await again.close();
});

test('online/offline mapping and retention of old days', async () => {
  assert.is(onlineOrOffline({ decided_by: 'offline-local', offline: true }), 'offline');
  assert.is(onlineOrOffline({ decided_by: 'deferred', offline: true }), 'offline');
  assert.is(onlineOrOffline({ decided_by: 'upstream', offline: false }), 'online');
  const f = file();
  const s1 = await UsageStats.open({ file: f, site, defaultScene: '010101', clock: () => new Date(2025, 0, 1, 12) });
  s1.recordVerification(result('local', '20250101'));
  await s1.close();
  const s2 = await UsageStats.open({ file: f, site, defaultScene: '010101', retainDays: 365, clock: () => new Date(2026, 1, 1, 12) });
  assert.is(s2.usecardSceneList().total_count, 0);
  await s2.close();
});

test('recent errors by return code, and read_term_list from the registry', async () => {
  let now = new Date(2026, 10, 26, 12);
  const stats = await UsageStats.open({ file: file(), site, defaultScene: '010101', clock: () => now });
  stats.recordError('2001');
  stats.recordError('2001');
  stats.recordError('8004');
  now = new Date(now.getTime() + 2 * 3600_000);
  stats.recordError('2002');
  assert.equal(stats.recentErrors(3600).map((e) => [e.ret_code, e.count]), [['2002', 1]]);
  assert.equal(stats.recentErrors(4 * 3600).map((e) => [e.ret_code, e.count]), [['2001', 2], ['2002', 1], ['8004', 1]]);
  assert.match(stats.recentErrors(4 * 3600)[0]!.ret_msg, /过期/);
  const rows = readTermList([{ id: 'serial:/dev/ttyUSB0', name: '挂号1号窗', station: 'desk-1', stmCode: '3502A0001STMA0001', serialNumber: 'SN123', manufacturer: 'Honeywell', firstSeen: new Date(2026, 9, 1, 9).toISOString() }, { id: 'hid:0c2e:0b61' }], site);
  assert.equal(rows[0], { org_code: '45678901-2', org_name: '演示医院', term_record: '3502A0001STMA0001', term_serial: 'SN123', term_name: '挂号1号窗', term_useway: 'desk-1', term_unit: 'Honeywell', term_access_time: '20261001' });
  assert.is(rows[1]!.term_name, 'hid:0c2e:0b61');
  assert.is(rows[1]!.term_access_time, '');
  await stats.close();
});

test('served on the HIS port behind HIS auth, with parameter validation', async () => {
  const stats = await UsageStats.open({ file: file(), site, defaultScene: '010101' });
  stats.recordVerification(result('local'));
  // the routes as the appliance mounts them: opsExtensions on the production HIS app
  const app = hisTestApp({ apiKeys: ['his-key-0123456789abcdef'], extensions: opsExtensions({ stats, site, scanners: () => [{ id: 'serial:/dev/ttyS0' }] }) });
  const srv = await listen(app);
  const h = { Authorization: 'Bearer his-key-0123456789abcdef' };
  try {
    assert.is((await fetch(`${srv.url}/v1/stats/usecard-scene`)).status, 401);
    const body = await (await fetch(`${srv.url}/v1/stats/usecard-scene?from=20261101&to=20261130`, { headers: h })).json();
    assert.equal(body, { usecard_scene_list: [{ time_region: '20261125', org_code: '45678901-2', online_or_offline: 'online', usecard_scene: '010101', usecard_scene_num: 1 }], page_no: 1, page_size: 100, total_count: 1 });
    const bad = await fetch(`${srv.url}/v1/stats/usecard-scene?from=2026-11-01`, { headers: h });
    assert.is(bad.status, 400);
    assert.is((await bad.json()).ret_code, '9001');
    assert.is((await fetch(`${srv.url}/v1/stats/usecard-scene?page_size=5000`, { headers: h })).status, 400);
    const terms = await (await fetch(`${srv.url}/v1/stats/read-terms`, { headers: h })).json();
    assert.is(terms.total_count, 1);
    assert.is(terms.read_term_list[0].term_serial, 'serial:/dev/ttyS0');
    const errs = await (await fetch(`${srv.url}/v1/stats/errors?window_s=60`, { headers: h })).json();
    assert.equal(errs, { window_s: 60, errors: [] });
  } finally {
    await srv.close();
    await stats.close();
  }
});

test.run();
