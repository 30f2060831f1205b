/**
 * Each shipped dialect end to end: the appliance's HttpUpstream speaking the dialect to the
 * home-card-system simulator speaking it too, over loopback HTTP — verify, cross-domain verify, and
 * the province methods queued in the real outbox and delivered by the real replay loop (the daily
 * usage upload in batches of ≤ 500, idempotent per day and terminal; a reading-terminal registration).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { openOutbox, startReplay } from '../src/store/index.ts';
import { HttpUpstream } from '../src/protocol/http-upstream.ts';
import { shippedDialects } from '../src/protocol/dialect-profiles.ts';
import { queueTerminalRegistrations, queueUsecarddate, type UsageRow } from '../src/protocol/province.ts';
import { METHOD_CROSS_DOMAIN, METHOD_REGISTER_TERMINAL, METHOD_USECARDDATE, METHOD_VERIFY } from '../src/protocol/upstream.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { startSimulator, DEFAULT_APP_ID, DEFAULT_APP_SECRET } from '../demo/simulator/server.ts';
import { makePopulation } from '../demo/simulator/population.ts';
import { tempDir } from './helpers/tmp.ts';

const tmp = tempDir('ehc-dialect-e2e-');
const APP_KEY = '00112233445566778899AABBCCDDEEFF';
const TERM = '3502A0001STMA0001';
const DAY = '20261201';

async function until(cond: () => boolean, what: string, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** 501 usage rows of one day (two batches: 500 + 1) plus one of another day (not uploaded). */
function usageRows(): UsageRow[] {
  const rows: UsageRow[] = [];
  for (let i = 0; i < 501; i++) rows.push({ time_region: DAY, org_code: `ORG${String(i).padStart(4, '0')}`, online_or_offline: i % 2 ? 'online' : 'offline', usecard_scene: '010101', usecard_scene_num: i + 1 });
  rows.push({ time_region: '20261130', org_code: 'ORG0000', online_or_offline: 'online', usecard_scene: '010101', usecard_scene_num: 3 });
  return rows;
}

const biz = (code: string, n: string) => ({ ehealth_code: code, treatment_code: '010101', operator_id: 'op', operator_name: '测试员', out_verify_no: `E2E${n}${Date.now()}`.slice(0, 32), out_verify_time: '20261201120000' });

for (const name of shippedDialects().keys()) {
  test(`dialect ${name}: verify, cross-domain, usage upload and terminal registration round-trip through the simulator`, async () => {
    const dir = path.join(tmp.dir, name);
    const keys = { ...DEFAULT_KEY_INDEXES };
    const keyFile = path.join(dir, 'soft-card.keys.json');
    const card = new ProfiledCard(await SoftCard.open(keyFile, keys), keys);
    const appKey = name === 'fixed-key' ? APP_KEY : undefined;
    const sim = await startSimulator({ keyFile, port: 0, apps: [{ appId: DEFAULT_APP_ID, secret: DEFAULT_APP_SECRET, dialect: name, appKey }] });
    const upstream = new HttpUpstream(
      { url: sim.url, crossDomainUrl: sim.url, appId: DEFAULT_APP_ID, appSecret: DEFAULT_APP_SECRET, termId: TERM, version: '1.0.0', timeoutMs: 4000, connectTimeoutMs: 2000, healthIntervalMs: 600_000, insecure: true, dialect: name, ...(appKey ? { appKey } : {}) },
      { probe: false },
    );
    const log = memoryLogger();
    const outbox = await openOutbox(
      {
        stateDir: path.join(dir, 'state'),
        outbox: { maxRecords: 1000, maxBytes: 1 << 22, maxAgeHours: 24, whenFull: 'reject-new', replayBatch: 64, replayYieldAbove: 0.9, replayMaxYieldMs: 5000 },
        card: { driver: 'soft', keyFile, keys },
      },
      card,
      log,
    );
    let replay: ReturnType<typeof startReplay> | undefined;
    try {
      const person = makePopulation()[1]!;
      const id = { idType: person.idType, idNo: person.idNo };
      const local = sim.cardSystems.find((c) => c.ehcin === '3502A0001')!;
      const foreign = sim.cardSystems.find((c) => c.ehcin === '3501A0002')!;
      const got = await upstream.call(METHOD_VERIFY, biz(local.issueCode(id), 'V'));
      assert.is(got.id_no, person.idNo);
      assert.is(got.user_name, person.name);
      const cross = await upstream.call(METHOD_CROSS_DOMAIN, biz(foreign.issueCode(id, { static: true }), 'C'));
      assert.is(cross.id_no, person.idNo);
      assert.is(cross.issuer_org_code, '3501A0002');

      const dialect = shippedDialects().get(name)!;
      const calls = sim.received();
      assert.equal(calls.map((c) => c.method), [METHOD_VERIFY, METHOD_CROSS_DOMAIN]);
      for (const c of calls) {
        assert.is(c.form, dialect.body === 'form', 'body form as the dialect says');
        assert.is(c.path, dialect.paths[c.method] ? `/ehc${dialect.paths[c.method]}` : '/ehc');
        for (const [national, wire] of Object.entries(dialect.fields[c.method] ?? {})) {
          assert.ok(c.wireFields.includes(wire) && !c.wireFields.includes(national), `${national} travels as ${wire}`);
        }
      }

      const serials = await queueUsecarddate(outbox, DAY, TERM, usageRows());
      assert.is(serials.length, 2);
      const registered = await queueTerminalRegistrations(
        outbox,
        [{ org_code: '12350000MB0000000X', org_name: '测试医院', term_record: TERM, term_serial: 'SN-0001', term_name: '挂号窗口扫码器', term_useway: '挂号', term_unit: 'ehc-edge', term_access_time: '20261201' }],
        TERM,
      );
      replay = startReplay({ outbox, upstream, log, backoff: { baseMs: 20, maxMs: 100 } });
      const r = replay;
      await until(() => r.status().depth === 0, 'usage batches and registration delivered');
      const province = sim.province();
      const uploads = province.filter((p) => p.method === METHOD_USECARDDATE);
      assert.equal(uploads.map((u) => (u.biz.list as unknown[]).length), [500, 1], 'at most 500 records a call');
      assert.equal(uploads.map((u) => u.biz.out_verify_no), serials);
      assert.ok(uploads.every((u) => u.biz.use_date === DAY && u.biz.term_id === TERM));
      assert.equal(province.filter((p) => p.method === METHOD_REGISTER_TERMINAL).map((p) => p.biz.term_record), [TERM]);
      assert.equal(registered, [`REG${TERM}`]);

      // the same day queued again (a restart, an operator's re-run): same serials, answered 3002, delivered, not stored twice
      assert.equal(await queueUsecarddate(outbox, DAY, TERM, usageRows()), serials);
      await until(() => r.status().depth === 0, 'repeat delivered');
      assert.is(sim.province().filter((p) => p.method === METHOD_USECARDDATE).length, 2, 'idempotent per day and terminal');
      assert.is(r.status().dead, 0);
    } finally {
      await replay?.stop();
      await outbox.close();
      await upstream.close();
      await sim.close();
      await card.close();
    }
  });
}

test.after(() => tmp.cleanup());

test.run();
