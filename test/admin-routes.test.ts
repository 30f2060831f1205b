/**
 * The admin API on the production wiring (startAppliance, real HTTP): reload (the SIGHUP path), dead
 * letters requeued / dropped, scanners registered / renamed (in status and in later scan events, kept
 * across a restart), HIS keys rotated (new key once, old key for the grace, only sm3: digests at rest);
 * each action audited with the admin key's id and never a key; HIS and viewer keys refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { entry } from './fixtures/entries.ts';
import { sm3Hex } from '../src/his/auth.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';

const ADMIN = 'admin-key-for-the-tests-0001';
const VIEWER = 'viewer-key-for-the-wall-0001';
const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const ROUTES: Array<[string, string, unknown?]> = [
  ['POST', '/v1/admin/reload'],
  ['GET', '/v1/admin/dead-letters'],
  ['POST', '/v1/admin/dead-letters/requeue', { seqs: [1] }],
  ['POST', '/v1/admin/dead-letters/drop', { seqs: [1] }],
  ['POST', '/v1/admin/scanners', { scanner_id: 'x', name: 'x' }],
  ['POST', '/v1/admin/scanners/x/rename', { name: 'y' }],
  ['GET', '/v1/admin/his-keys'],
  ['POST', '/v1/admin/his-keys/rotate', { key_id: '00000000' }],
];

/** A test appliance whose config is also written to its file (reload reads it). */
async function withConfig(adjust: (doc: Record<string, any>) => void = () => {}) {
  let file = '';
  let written: Record<string, any> = {};
  const t = await testAppliance((doc) => {
    doc.admin = { apiKeys: [ADMIN], maxFailedAttempts: 50 };
    doc.his.authThrottle = { maxFailures: 10_000, windowSeconds: 60, globalMaxFailures: 1_000_000 };
    doc.his.viewerKeys = [VIEWER];
    adjust(doc);
    file = path.join(path.dirname(doc.stateDir), 'appliance.config.json');
    written = doc;
    writeFileSync(file, JSON.stringify(doc, null, 2));
  });
  const call = async (key: string, method: string, p: string, body?: unknown) => {
    const res = await fetch(t.appliance.url + p, { method, headers: { ...as(key), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
  };
  const auditText = () => readdirSync(path.join(t.config.stateDir, 'audit')).filter((n) => n.endsWith('.jsonl')).map((n) => readFileSync(path.join(t.config.stateDir, 'audit', n), 'utf8')).join('');
  const records = () => auditText().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  /** the audit records once `action` has `n` of them on disk (records are written behind the answer) */
  const recorded = async (action: string, n = 1) => {
    for (let i = 0; i < 100 && records().filter((x) => x.action === action).length < n; i++) await new Promise((r) => setTimeout(r, 20));
    return records();
  };
  return { ...t, file, doc: written, call, auditText, records, recorded };
}

test('a HIS key and a viewer key cannot call any admin route; without admin keys the admin API answers 403', async () => {
  const t = await withConfig();
  try {
    for (const [method, p, body] of ROUTES) {
      for (const key of [API_KEY, VIEWER, 'no-such-key-000000000000']) {
        const r = await t.call(key, method, p, body);
        assert.is(r.status, 401, `${method} ${p} with ${key === API_KEY ? 'the HIS' : key === VIEWER ? 'a viewer' : 'an unknown'} key`);
        assert.is(r.body.ret_code, '1010');
      }
    }
  } finally {
    await t.stop();
  }
  const none = await withConfig((doc) => (doc.admin = { apiKeys: [] }));
  try {
    const r = await none.call(ADMIN, 'POST', '/v1/admin/reload');
    assert.is(r.status, 403);
  } finally {
    await none.stop();
  }
});

test('reload applies a new HIS key and names what needs a restart (the SIGHUP path); a broken file is refused and the running config stays; audited', async () => {
  const NEW_KEY = 'his-key-added-by-reload-0001';
  const t = await withConfig();
  try {
    assert.is((await t.call(NEW_KEY, 'GET', '/v1/status')).status, 401);
    writeFileSync(t.file, JSON.stringify({ ...t.doc, his: { ...t.doc.his, apiKeys: [API_KEY, NEW_KEY] }, verify: { ...t.doc.verify, clockSkewSeconds: 45 } }, null, 2));
    const r = await t.call(ADMIN, 'POST', '/v1/admin/reload');
    assert.is(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.applied, ['his.apiKeys']);
    assert.equal(r.body.needs_restart, ['verify.clockSkewSeconds']);
    assert.is((await t.call(NEW_KEY, 'GET', '/v1/status')).status, 200, 'the reloaded key is accepted at once');

    writeFileSync(t.file, '{ "stateDir": ');
    const bad = await t.call(ADMIN, 'POST', '/v1/admin/reload');
    assert.is(bad.status, 422);
    assert.is(bad.body.ret_code, '9001');
    assert.match(bad.body.ret_msg, /appliance\.config\.json/);
    assert.is((await t.call(NEW_KEY, 'GET', '/v1/status')).status, 200, 'the running keys stay');

    const mine = (await t.recorded('admin.reload', 2)).filter((x) => x.action === 'admin.reload');
    assert.is(mine.length, 2);
    assert.is(mine[0]!.detail.admin_key, sm3Hex(ADMIN).slice(0, 8));
    assert.is(mine[0]!.detail.result, 'ok');
    assert.is(mine[1]!.detail.result, 'refused');
    assert.ok(t.records().some((x) => x.action === 'config.reload' && x.detail.via === 'admin'));
    assert.not.ok(t.auditText().includes(ADMIN), 'the admin key is never in the trail');
  } finally {
    await t.stop();
  }
});

test('dead letters: listed without payload, requeued to the outbox, dropped for good; unknown seqs named; audited', async () => {
  const t = await withConfig();
  try {
    const ob = t.appliance.outbox;
    await t.appliance.replay.stop(); // nothing delivers them meanwhile
    for (let i = 0; i < 3; i++) await ob.append(entry(i, 'usage', 'ADM'));
    const recs = await ob.peek(3);
    await Promise.all(recs.map((r) => ob.ack(r.seq, { status: 'dead', retCode: '2002', reason: 'refused by the home system' })));
    const list = await t.call(ADMIN, 'GET', '/v1/admin/dead-letters');
    assert.is(list.status, 200);
    assert.equal(list.body.dead_letters.map((d: { seq: number }) => d.seq), recs.map((r) => r.seq));
    assert.not.ok(JSON.stringify(list.body).includes('PATIENTSECRET'), 'no payload');
    const [a, b, c] = recs.map((r) => r.seq) as [number, number, number];

    const rq = await t.call(ADMIN, 'POST', '/v1/admin/dead-letters/requeue', { seqs: [a, 999999] });
    assert.is(rq.status, 200);
    assert.equal(rq.body, { requeued: 1, not_dead: [999999] });
    assert.is(ob.stats().dead, 2);
    assert.is(ob.stats().depth, 1, 'back in the outbox');

    const dr = await t.call(ADMIN, 'POST', '/v1/admin/dead-letters/drop', { seqs: [b, c] });
    assert.equal(dr.body, { dropped: 2, not_dead: [] });
    assert.is(ob.stats().dead, 0);

    const badBody = await t.call(ADMIN, 'POST', '/v1/admin/dead-letters/drop', { seqs: [], extra: 1 });
    assert.is(badBody.status, 400);
    const rec = (await t.recorded('admin.dead-letters.drop', 2)).find((x) => x.action === 'admin.dead-letters.requeue')!;
    assert.equal(rec.detail, { admin_key: sm3Hex(ADMIN).slice(0, 8), result: 'ok', seqs: [a], requeued: 1, not_dead: [999999] });
    assert.ok(t.records().some((x) => x.action === 'admin.dead-letters.drop' && x.detail.dropped === 2));
  } finally {
    await t.stop();
  }
});

test('register and rename a scanner: in status, in later scan events, kept across a restart; unknown scanner 404', async () => {
  const t = await withConfig((doc) => {
    doc.scanners = [{ driver: 'serial', path: '/dev/ehc-test-no-such-tty', name: 'Desk 1', station: 'desk-1' }];
  });
  let stopped = false;
  try {
    const status = async () => (await t.call(API_KEY, 'GET', '/v1/status')).body.scanners as Array<{ id: string; name?: string; state: string }>;
    const [desk] = await status();
    assert.ok(desk, 'the configured scanner is listed while absent');
    assert.is(desk!.name, 'Desk 1');
    const renamed = await t.call(ADMIN, 'POST', `/v1/admin/scanners/${encodeURIComponent(desk!.id)}/rename`, { name: '挂号 1 号窗' });
    assert.is(renamed.status, 200, JSON.stringify(renamed.body));
    assert.equal(renamed.body, { scanner_id: desk!.id, name: '挂号 1 号窗', previous_name: 'Desk 1' });
    assert.is((await status())[0]!.name, '挂号 1 号窗');

    assert.is((await t.call(ADMIN, 'POST', '/v1/admin/scanners/nobody/rename', { name: 'x' })).status, 404);

    // a virtual (injected) scanner: registered, then renamed; the next scan's events carry the new name
    const reg = await t.call(ADMIN, 'POST', '/v1/admin/scanners', { scanner_id: 'virtual:kiosk', name: '自助机 A', station: 'hall' });
    assert.is(reg.status, 201);
    assert.is((await t.call(ADMIN, 'POST', '/v1/admin/scanners', { scanner_id: 'virtual:kiosk', name: 'again' })).status, 409);
    assert.is((await t.call(ADMIN, 'POST', '/v1/admin/scanners/virtual%3Akiosk/rename', { name: '自助机 B' })).status, 200);
    const code = await issueHealthCode(t.appliance.card, { identity: { idType: '01', idNo: '350203199001011234' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    await t.appliance.scanning.inject({ text: code, scanner: 'kiosk' });
    const events = t.appliance.scanning.hub.since(0).events.filter((e) => e.scannerId === 'virtual:kiosk');
    assert.ok(events.length >= 2, `${events.length} events`);
    for (const e of events) {
      assert.is((e.data as { name?: string }).name, '自助机 B', `${e.type} event`);
      assert.is(e.station, 'hall');
    }
    assert.ok((await t.recorded('admin.scanner.rename', 3)).some((x) => x.action === 'admin.scanner.rename' && x.detail.scanner_name === '自助机 B' && x.detail.previous_scanner_name === '自助机 A'));

    // kept in state.json (durable write) and used after a restart
    const state = JSON.parse(readFileSync(path.join(t.config.stateDir, 'state.json'), 'utf8'));
    assert.is(state.scannerNames[desk!.id].name, '挂号 1 号窗');
    await t.appliance.stop();
    stopped = true;
    const { startAppliance } = await import('../src/appliance.ts');
    const again = await startAppliance(t.config, t.log);
    try {
      const s = (await again.status()) as { scanners: Array<{ name?: string }> };
      assert.is(s.scanners[0]!.name, '挂号 1 号窗');
    } finally {
      await again.stop();
    }
  } finally {
    if (!stopped) await t.appliance.stop();
    await t.stop().catch(() => {});
  }
});

test('rotate a HIS key: the new key answered once and accepted, the old one valid for the grace then refused; digests only at rest', async () => {
  const t = await withConfig((doc) => (doc.admin.keyGraceSeconds = 1));
  try {
    const keys = await t.call(ADMIN, 'GET', '/v1/admin/his-keys');
    assert.equal(keys.body.keys, [{ key_id: sm3Hex(API_KEY).slice(0, 8), source: 'config' }]);
    const r = await t.call(ADMIN, 'POST', '/v1/admin/his-keys/rotate', { key_id: sm3Hex(API_KEY).slice(0, 8) });
    assert.is(r.status, 201, JSON.stringify(r.body));
    const fresh = r.body.key as string;
    assert.ok(fresh.length >= 32);
    assert.is(r.body.key_id, sm3Hex(fresh).slice(0, 8));
    assert.is((await t.call(fresh, 'GET', '/v1/status')).status, 200, 'the new key works at once');
    assert.is((await t.call(API_KEY, 'GET', '/v1/status')).status, 200, 'the old key still works during the grace');
    const during = (await t.call(ADMIN, 'GET', '/v1/admin/his-keys')).body.keys as Array<{ key_id: string; valid_until?: string }>;
    assert.ok(during.find((k) => k.key_id === sm3Hex(API_KEY).slice(0, 8))?.valid_until);
    await new Promise((res) => setTimeout(res, 1300));
    assert.is((await t.call(API_KEY, 'GET', '/v1/status')).status, 401, 'the old key is refused after the grace');
    assert.is((await t.call(fresh, 'GET', '/v1/status')).status, 200);
    const code = await issueHealthCode(t.appliance.card, { identity: { idType: '01', idNo: '350203199001011234' }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(Date.now() + 300_000) });
    const verify = await fetch(`${t.appliance.url}/v1/verify`, { method: 'POST', headers: { ...as(fresh), 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: code }) });
    assert.is(verify.status, 200, 'the new key verifies');
    await verify.text();
    assert.is((await t.call(ADMIN, 'POST', '/v1/admin/his-keys/rotate', { key_id: 'ffffffff' })).status, 404);

    const ring = readFileSync(path.join(t.config.stateDir, 'his-keys.json'), 'utf8');
    assert.ok(ring.includes(sm3Hex(fresh)), 'the digest is kept');
    const everything = [ring, t.auditText(), readFileSync(path.join(t.config.stateDir, 'state.json'), 'utf8'), t.log.lines.join('\n')].join('\n');
    assert.not.ok(everything.includes(fresh), 'the new key is nowhere at rest, nor in the log');
    assert.not.ok(everything.includes(ADMIN), 'nor the admin key');
    const rec = (await t.recorded('admin.his-keys.rotate', 2)).find((x) => x.action === 'admin.his-keys.rotate' && x.detail.result === 'ok')!;
    assert.is(rec.detail.admin_key, sm3Hex(ADMIN).slice(0, 8));
    assert.is(rec.detail.key_id, sm3Hex(fresh).slice(0, 8));

    // the rotation survives a restart
    await t.appliance.stop();
    const { startAppliance } = await import('../src/appliance.ts');
    const again = await startAppliance(t.config, t.log);
    try {
      const res = await fetch(`${again.url}/v1/status`, { headers: as(fresh) });
      assert.is(res.status, 200);
      await res.text();
      const old = await fetch(`${again.url}/v1/status`, { headers: as(API_KEY) });
      assert.is(old.status, 401);
      await old.text();
    } finally {
      await again.stop();
    }
  } finally {
    await t.stop().catch(() => {});
  }
});

test('ehc-edge admin: reload, dead letters, scanners, keys through the CLI definitions; exit codes 0/1/2/3; Chinese by default, English with --lang en', async () => {
  const t = await withConfig((doc) => {
    doc.scanners = [{ driver: 'serial', path: '/dev/ehc-test-no-such-tty', name: 'Desk 1', station: 'desk-1' }];
  });
  const { main } = await import('../tools/admin.ts');
  const run = async (...argv: string[]) => {
    const lines: string[] = [];
    // Chinese unless the test asks for English (whatever LANG the machine has)
    const code = await main([...argv, '--url', t.appliance.url, ...(argv.includes('--key') ? [] : ['--key', ADMIN]), ...(argv.includes('--lang') ? [] : ['--lang', 'zh'])], (l) => lines.push(l));
    return { code, text: lines.join('\n') };
  };
  const errors: string[] = [];
  const realError = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    const reload = await run('reload', '--json');
    assert.is(reload.code, 0, errors.join('\n'));
    assert.equal(JSON.parse(reload.text), { applied: [], needs_restart: [] });
    assert.match((await run('reload')).text, /配置已重新加载/);
    assert.match((await run('reload', '--lang', 'en')).text, /config reloaded/);
    assert.is((await run('reload', '--key', API_KEY)).code, 2, 'a HIS key is refused: exit 2');
    assert.match(errors.join('\n'), /需要管理密钥/);
    assert.is((await run('reload', '--key', API_KEY, '--lang', 'en')).code, 2);
    assert.match(errors.join('\n'), /admin key is needed/);

    const keys = await run('keys', 'list', '--json');
    assert.is(keys.code, 0);
    const [his] = JSON.parse(keys.text).keys as Array<{ key_id: string }>;
    assert.is(his!.key_id, sm3Hex(API_KEY).slice(0, 8));
    const table = await run('keys', 'list');
    assert.match(table.text, /密钥 ID\s+来源/);
    assert.match(table.text, /配置文件/);
    const rotated = await run('keys', 'rotate', his!.key_id);
    assert.is(rotated.code, 0);
    assert.match(rotated.text, /只显示这一次/);
    assert.match(rotated.text, /CST/);
    assert.is((await run('keys', 'rotate', 'ffffffff')).code, 1, 'unknown key id: exit 1');

    const [desk] = ((await t.call(API_KEY, 'GET', '/v1/status')).body.scanners as Array<{ id: string }>);
    const renamed = await run('scanners', 'rename', desk!.id, '挂号 1 号窗', '--lang', 'en');
    assert.is(renamed.code, 0);
    assert.match(renamed.text, /renamed to "挂号 1 号窗" \(was "Desk 1"\)/);
    assert.is((await run('scanners', 'rename', 'nobody', 'x')).code, 1);
    // the listing shows the new name, in Chinese, columns measured in terminal cells (CJK is two wide)
    const { main: scannersMain } = await import('../tools/scanners.ts');
    const listed: string[] = [];
    assert.is(await scannersMain(['list', '--url', t.appliance.url, '--key', API_KEY, '--lang', 'zh'], (l) => listed.push(l)), 1, 'a configured scanner absent: exit 1');
    const [head, row] = listed.join('\n').split('\n');
    assert.match(head!, /^扫码器 ID\s+驱动\s+状态/);
    assert.match(row!, /未插入/);
    assert.match(row!, /挂号 1 号窗/);
    const { default: stringWidth } = await import('string-width');
    assert.is(stringWidth(head!.slice(0, head!.indexOf('名称'))), stringWidth(row!.slice(0, row!.indexOf('挂号'))), 'the name column starts at the same cell');
    assert.is((await run('scanners', 'register', 'virtual:k', '自助机', '--station', 'hall')).code, 0);

    await t.appliance.replay.stop();
    const ob = t.appliance.outbox;
    for (let i = 0; i < 2; i++) await ob.append(entry(i, 'usage', 'CLI'));
    const recs = await ob.peek(2);
    await Promise.all(recs.map((r) => ob.ack(r.seq, { status: 'dead', retCode: '2002', reason: 'refused' })));
    const list = await run('dead', 'list');
    assert.match(list.text, /序号\s+类型/);
    assert.is((await run('dead', 'requeue', String(recs[0]!.seq))).code, 0);
    const drop = await run('dead', 'drop', '--all', '--json');
    assert.equal(JSON.parse(drop.text), { dropped: 1, not_dead: [] });
    assert.is(ob.stats().dead, 0);
    assert.is((await run('dead', 'drop', 'x1')).code, 2, 'a bad seq is a usage error');
  } finally {
    await t.stop();
  }
  const gone = await main(['reload', '--url', t.appliance.url, '--key', ADMIN], () => {});
  console.error = realError;
  assert.is(gone, 3, 'appliance unreachable: exit 3');
});

test.run();
