/**
 * Province methods: the usecarddate batches (≤ 500 records, serials fixed by day and terminal), the
 * terminal registration message (表6.4 fields, STM number checked), and the daily/once-per-terminal
 * jobs behind config that queue them — nothing queued twice across a restart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadDialect } from '../src/protocol/dialect-profiles.ts';
import { checkUsecarddate, terminalRegistration, usecarddateBatches, usecarddateSerial, USECARDDATE_MAX, type TerminalRow, type UsageRow } from '../src/protocol/province.ts';
import { startProvinceJobs, type ProvinceSettings } from '../src/protocol/province-jobs.ts';
import type { OutboxEntry } from '../src/store/outbox.ts';
import { EhcError } from '../src/errors.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { parseConfig } from '../src/config/load.ts';
import { readFileSync } from 'node:fs';
import { tempDir } from './helpers/tmp.ts';

const TERM = '3502A0001STMA0001';
const rows = (day: string, n: number): UsageRow[] =>
  Array.from({ length: n }, (_, i) => ({ time_region: day, org_code: `ORG${String(i).padStart(5, '0')}`, online_or_offline: 'online' as const, usecard_scene: '010101', usecard_scene_num: 1 }));
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as EhcError).code;
  }
  return 'accepted';
};

test('usecarddate: ≤ 500 records a call, only the day asked, serials ≤ 32 chars and the same every time', () => {
  const b = usecarddateBatches('20261201', TERM, [...rows('20261201', 1001), ...rows('20261130', 7), { ...rows('20261201', 1)[0]!, org_code: 'ZERO', usecard_scene_num: 0 }]);
  assert.equal(b.map((x) => (x.list as unknown[]).length), [500, 500, 1]);
  assert.equal(b.map((x) => x.batch_no), ['1', '2', '3']);
  assert.ok(b.every((x) => x.batch_total === '3' && x.use_date === '20261201' && x.term_id === TERM));
  assert.ok(b.every((x) => x.out_verify_no.length <= 32));
  assert.equal(usecarddateBatches('20261201', TERM, rows('20261201', 1001).reverse()), b, 'stable order: same batches from the same rows');
  assert.is.not(usecarddateSerial('20261201', TERM, 0), usecarddateSerial('20261201', '3502A0001STMA0002', 0), 'per terminal');
  assert.is.not(usecarddateSerial('20261201', TERM, 0), usecarddateSerial('20261202', TERM, 0), 'per day');
  assert.equal(usecarddateBatches('20261201', TERM, []), []);
  assert.is(code(() => usecarddateBatches('2026-12-01', TERM, [])), '9001');
  assert.is(code(() => usecarddateBatches('20261201', TERM, [], USECARDDATE_MAX + 1)), '9001');
  for (const x of b) checkUsecarddate(x);
  assert.is(code(() => checkUsecarddate({ ...b[0]!, list: rows('20261201', 501), record_num: '501' })), '9001');
  assert.is(code(() => checkUsecarddate({ ...b[0]!, record_num: '499' })), '9001');
});

const terminal = (stm: string): TerminalRow => ({ org_code: '12350000MB0000000X', org_name: '测试医院', term_record: stm, term_serial: 'SN1', term_name: '挂号1', term_useway: '挂号', term_unit: 'ehc-edge', term_access_time: '20261201' });

test('terminal registration: 表6.4 fields, an STM number, a serial from the number', () => {
  const m = terminalRegistration(terminal(TERM));
  assert.is(m.out_verify_no, `REG${TERM}`);
  assert.is(m.term_name, '挂号1');
  assert.is(code(() => terminalRegistration(terminal('3502A0001APPA0001'))), '9001');
  assert.is(code(() => terminalRegistration({ ...terminal(TERM), term_serial: undefined } as never)), '9001');
});

function jobs(dir: string, settings: Partial<ProvinceSettings>, at: { t: Date }, terms: TerminalRow[], queued: OutboxEntry[]) {
  return startProvinceJobs({
    settings: { usecarddate: false, usecarddateHour: 1, registerTerminals: false, ...settings },
    stateDir: dir,
    termId: TERM,
    outbox: { append: async (e) => queued.push(e) },
    usageRows: (day) => rows(day, 3),
    terminals: () => terms,
    log: memoryLogger(),
    now: () => at.t,
    intervalMs: 3_600_000,
  });
}

test('jobs: yesterday uploaded once after the configured hour (CST), not again after a restart; terminals registered once', async () => {
  const tmp = tempDir('ehc-province-');
  try {
    const queued: OutboxEntry[] = [];
    const at = { t: new Date('2026-12-01T16:30:00Z') }; // 2026-12-02 00:30 CST: before 01:00
    const terms = [terminal(TERM), terminal('')];
    let j = jobs(tmp.dir, { usecarddate: true, registerTerminals: true }, at, terms, queued);
    let r = await j.runOnce();
    assert.equal(r.usecarddate, []);
    assert.equal(r.registrations, [`REG${TERM}`], 'the terminal without an STM number is not registered');
    at.t = new Date('2026-12-01T17:05:00Z'); // 01:05 CST
    r = await j.runOnce();
    assert.equal(r.usecarddate, [usecarddateSerial('20261201', TERM, 0)]);
    assert.equal(r.registrations, []);
    assert.equal((await j.runOnce()).usecarddate, []);
    await j.stop();
    j = jobs(tmp.dir, { usecarddate: true, registerTerminals: true }, at, [...terms, terminal('3502A0001STMA0002')], queued);
    r = await j.runOnce();
    assert.equal(r, { usecarddate: [], registrations: ['REG3502A0001STMA0002'] }, 'after a restart: nothing repeated, the new terminal registered');
    at.t = new Date('2026-12-02T17:05:00Z');
    assert.equal((await j.runOnce()).usecarddate, [usecarddateSerial('20261202', TERM, 0)]);
    await j.stop();
    assert.equal(queued.map((e) => [e.kind, e.method]), [
      ['usage', 'ehc.ehealthcode.addterm'],
      ['usage', 'ehc.ehealthcode.usecarddate'],
      ['usage', 'ehc.ehealthcode.addterm'],
      ['usage', 'ehc.ehealthcode.usecarddate'],
    ]);
    const off: OutboxEntry[] = [];
    const offDir = tempDir('ehc-province-off-');
    const none = jobs(offDir.dir, {}, at, terms, off);
    assert.equal(await none.runOnce(), { usecarddate: [], registrations: [] }, 'off unless configured');
    await none.stop();
    offDir.cleanup();
  } finally {
    tmp.cleanup();
  }
});

test('config: upstream.province defaults off; upstream.dialect a name or inline; refused with file: key: why', () => {
  const base = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  const c = parseConfig(base, 'x.json');
  assert.equal(c.upstream.province, { usecarddate: false, usecarddateHour: 1, registerTerminals: false });
  const on = parseConfig({ ...base, upstream: { ...base.upstream, dialect: 'form-paths', province: { usecarddate: true } } }, 'x.json');
  assert.is(on.upstream.province?.usecarddate, true);
  assert.is(loadDialect(on.upstream.dialect).body, 'form');
  const bad = (upstream: Record<string, unknown>) => {
    try {
      parseConfig({ ...base, upstream: { ...base.upstream, ...upstream } }, 'x.json');
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };
  assert.is(bad({ dialect: 'nope' }).split(';')[0], 'x.json: upstream.dialect: no dialect "nope"');
  assert.match(bad({ dialect: { encType: 'AES' } }), /^x\.json: upstream\.dialect: encType: AES is not supported: 密评/);
  assert.match(bad({ dialect: 'fixed-key' }), /^x\.json: upstream\.dialect: .*set upstream\.appKey/);
  assert.is(bad({ dialect: 'fixed-key', appKey: '00112233445566778899AABBCCDDEEFF' }), 'accepted');
  assert.match(bad({ province: { usecarddateHour: 24 } }), /^x\.json: upstream\.province\.usecarddateHour: /);
});

test.run();
