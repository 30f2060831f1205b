/**
 * The wiring the lead's HIS app uses: createHisApp with the ops observer on the verifier, audited auth
 * failures, collectStatus behind /v1/status and the ops extensions (status page, stats) — end to end
 * over a real port with the real SoftCard, then the audit chain checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { createHisApp } from '../src/his/app.ts';
import { auditAuthFailures } from '../src/his/auth.ts';
import { opsExtensions } from '../src/his/ops-routes.ts';
import { RoutingVerifier } from '../src/verify/verifier.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { createRegistry } from '../src/platform/metrics.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { AuditTrail } from '../src/ops/audit.ts';
import { verifyAuditChain } from '../src/ops/audit-verify.ts';
import { UsageStats } from '../src/ops/stats.ts';
import { deferredAnswerAudit, opsObserver } from '../src/ops/observer.ts';
import { EhcError } from '../src/errors.ts';
import type { AuditEvent } from '../src/ops/audit.ts';
import { collectStatus } from '../src/ops/status.ts';
import { tempDir } from './helpers/tmp.ts';
import { serveApp } from './helpers/serve.ts';
import { FakeUpstream, LOCAL_EHCIN, MemoryOutbox, PATIENT, softCard } from './helpers/fixtures.ts';

const KEY = 'wiring-test-key-0123456';
const site = { orgCode: '45678901-2', orgName: '演示医院', termId: `${LOCAL_EHCIN}STMA0001` };

test('verify → audit + stats; auth failures audited; /v1/status, /status and /v1/stats served', async () => {
  const t = tempDir();
  const card = await softCard(t.dir);
  const log = memoryLogger();
  const audit = await AuditTrail.open({ dir: path.join(t.dir, 'audit'), card, macKey: DEFAULT_KEY_INDEXES.mac, logger: log });
  const stats = await UsageStats.open({ file: path.join(t.dir, 'stats', 'usage.json'), site, defaultScene: '010101' });
  const upstream = new FakeUpstream();
  const outbox = new MemoryOutbox();
  const verifier = new RoutingVerifier({
    card,
    upstream,
    outbox,
    settings: { localEhcins: [LOCAL_EHCIN], policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'ehc-edge', operatorName: 'ehc-edge', termId: site.termId },
    observers: [opsObserver({ audit, stats, defaultOperator: 'ehc-edge' })],
  });
  const startedAt = new Date();
  const app = createHisApp({
    verifier,
    apiKeys: [KEY],
    bodyLimitBytes: 4096,
    log,
    registry: createRegistry(false),
    status: async () =>
      ({ ...(await collectStatus({
        version: '0.1.0',
        startedAt,
        site,
        scanners: () => [],
        card: () => card.health(),
        upstream: () => upstream.health(),
        outbox: () => ({ depth: outbox.entries.length, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false }),
        errors: (w) => stats.recentErrors(w),
        audit: () => audit.state(),
        recent: (n) => audit.recentVerifications(n),
      })) }),
    ready: async () => ({ ok: true, checks: {} }),
    onAuthFailure: auditAuthFailures({ audit, logger: log }),
    extensions: opsExtensions({ stats, site, scanners: () => [] }),
  });
  const srv = await serveApp(app);
  const h = { authorization: `Bearer ${KEY}` };
  try {
    const code = await issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt: new Date(Date.now() + 300_000) });
    const ok = await fetch(`${srv.url}/v1/verify`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: code, treatment_code: '010105' }) });
    assert.is(ok.status, 200);
    const expired = await issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt: new Date(Date.now() - 3600_000) });
    const no = await fetch(`${srv.url}/v1/verify`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ ehealth_code: expired }) });
    assert.is((await no.json()).ret_code, '2001');
    assert.is((await fetch(`${srv.url}/v1/status`, { headers: { authorization: 'Bearer not-a-valid-key-000000' } })).status, 401);
    assert.is((await fetch(`${srv.url}/v1/stats/usecard-scene`)).status, 401);

    await audit.flush();
    const status = await (await fetch(`${srv.url}/v1/status`, { headers: h })).json();
    assert.is(status.card.ok, true);
    assert.is(status.outbox.depth, 1);
    assert.equal(status.errors.byCode.map((e: { ret_code: string }) => e.ret_code), ['2001']);
    assert.equal(status.recent.map((r: { ret_code: string }) => r.ret_code), ['2001', '0000']);
    assert.is(status.recent[1].subject.id_no, `${PATIENT.idNo.slice(0, 4)}**********${PATIENT.idNo.slice(-4)}`);
    const scene = await (await fetch(`${srv.url}/v1/stats/usecard-scene`, { headers: h })).json();
    assert.equal(scene.usecard_scene_list.map((r: { online_or_offline: string; usecard_scene: string; usecard_scene_num: number }) => [r.online_or_offline, r.usecard_scene, r.usecard_scene_num]), [['online', '010105', 1]]);
    const page = await fetch(`${srv.url}/status`);
    assert.is(page.status, 200);
    assert.match(await page.text(), /<title>ehc-edge 状态<\/title>/);

    const verified = audit.recentVerifications(5).find((r) => r.action === 'verify')!;
    assert.is(verified.route, 'local');
    assert.is(verified.terminal, site.termId);
    assert.is(verified.operator, 'ehc-edge');
    assert.is(verified.ret_code, '0000');
  } finally {
    await srv.close();
    await audit.close();
    await stats.close();
  }
  const report = await verifyAuditChain(path.join(t.dir, 'audit'), card, DEFAULT_KEY_INDEXES.mac);
  assert.ok(report.ok, JSON.stringify(report.broken));
  const { readFileSync, readdirSync } = await import('node:fs');
  const text = readdirSync(path.join(t.dir, 'audit')).filter((n) => n.endsWith('.jsonl')).map((n) => readFileSync(path.join(t.dir, 'audit', n), 'utf8')).join('');
  for (const action of ['"action":"verify"', '"action":"verify.rejected"', '"action":"auth.failed"']) assert.ok(text.includes(action), action);
  assert.not.ok(text.includes(PATIENT.idNo), 'no clear ID in the trail');
  assert.is(report.records, 4);
  await card.close();
  t.cleanup();
});

test('a deferred answer carrying identity waits for its audit record (refuse) and is refused with 8007 when it cannot be written; otherwise recorded without waiting', async () => {
  const appended: AuditEvent[] = [];
  const recorded: AuditEvent[] = [];
  let full = false;
  const audit = {
    append: async (e: AuditEvent) => {
      if (full) throw new Error('ENOSPC: no space left on device');
      appended.push(e);
    },
    record: (e: AuditEvent) => void recorded.push(e),
  };
  const answered = { outVerifyNo: '20261202231536747486e19521953088', retCode: '0000', retMsg: 'ok', identity: { id_type: '01', id_no: PATIENT.idNo, user_name: '陈俊海' }, answeredAt: '2026-12-02T15:40:00.000Z' };
  await deferredAnswerAudit({ audit })(answered, site.termId);
  assert.is(appended.length, 1);
  assert.equal([appended[0]!.action, appended[0]!.route, appended[0]!.terminal, appended[0]!.subject?.name, appended[0]!.detail?.out_verify_no], ['verify.deferred-answer', 'deferred', site.termId, '陈俊海', answered.outVerifyNo]);
  full = true;
  try {
    await deferredAnswerAudit({ audit })(answered, site.termId);
    assert.unreachable('refused');
  } catch (err) {
    assert.instance(err, EhcError);
    assert.is((err as EhcError).code, '8007');
  }
  await deferredAnswerAudit({ audit, onFailure: 'continue' })(answered, site.termId);
  await deferredAnswerAudit({ audit })({ outVerifyNo: 'OVN1', retCode: '2001', retMsg: 'expired', answeredAt: answered.answeredAt }, site.termId);
  assert.equal(recorded.map((e) => [e.retCode, e.subject?.name]), [['0000', '陈俊海'], ['2001', undefined]]);
});

test('audit.onFailure = refuse: an answer whose audit record cannot be written is heard once, as the 8007 rejection — never verified too (metrics, history, usage)', async () => {
  const t = tempDir();
  const card = await softCard(t.dir);
  try {
    const heard: string[] = []; // what the bus (metrics, history, the desks) hears
    const counted: string[] = []; // what the usage stats count
    const audit = {
      append: async () => {
        throw new Error('ENOSPC: no space left on device');
      },
      record: () => {},
    };
    const stats = { recordVerification: (r: { decided_by: string }) => void counted.push(`used:${r.decided_by}`), recordError: (code: string) => void counted.push(`error:${code}`) };
    const verifier = new RoutingVerifier({
      card,
      upstream: new FakeUpstream(),
      outbox: new MemoryOutbox(),
      settings: { localEhcins: [LOCAL_EHCIN], policy: 'local-first', clockSkewSeconds: 30, treatmentCode: '010101', operatorId: 'ehc-edge', operatorName: 'ehc-edge', termId: site.termId },
      observers: [opsObserver({ audit, stats }), { verified: (r) => void heard.push(`verified:${r.ret_code}`), rejected: (e) => void heard.push(`rejected:${e.code}`) }],
    });
    const code = await issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt: new Date(Date.now() + 300_000) });
    try {
      await verifier.verify({ ehealthCode: code });
      assert.unreachable('withheld');
    } catch (err) {
      assert.is((err as EhcError).code, '8007');
    }
    assert.equal(heard, ['rejected:8007']);
    assert.equal(counted, ['error:8007']);
  } finally {
    await card.close();
    t.cleanup();
  }
});

test.run();
