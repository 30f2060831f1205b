import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RoutingVerifier, type VerifierSettings } from '../src/verify/verifier.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { EhcError } from '../src/errors.ts';
import type { VerifyPolicy } from '../src/verify/types.ts';
import { tempDir } from './helpers/tmp.ts';
import { FakeUpstream, FOREIGN_EHCIN, LOCAL_EHCIN, MemoryOutbox, PATIENT, softCard } from './helpers/fixtures.ts';

const NOW = new Date('2026-11-26T04:00:00Z');
const settings = (policy: VerifyPolicy): VerifierSettings => ({
  localEhcins: [LOCAL_EHCIN],
  policy,
  clockSkewSeconds: 30,
  treatmentCode: '010101',
  operatorId: 'desk',
  operatorName: 'ehc-edge',
  termId: `${LOCAL_EHCIN}STMA0001`,
});

async function setup(policy: VerifyPolicy) {
  const t = tempDir();
  const card = await softCard(t.dir);
  const foreignCard = await softCard(t.dir, 'foreign.json');
  const upstream = new FakeUpstream();
  const outbox = new MemoryOutbox();
  const verifier = new RoutingVerifier({ card, upstream, outbox, settings: settings(policy), now: () => NOW });
  const local = (expiresAt?: Date) => issueHealthCode(card, { identity: PATIENT, ehcappid: `${LOCAL_EHCIN}APPA0001`, expiresAt });
  const foreign = (expiresAt?: Date) => issueHealthCode(foreignCard, { identity: PATIENT, ehcappid: `${FOREIGN_EHCIN}APPA0001`, expiresAt });
  return { ...t, card, upstream, outbox, verifier, local, foreign };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return '0000';
  } catch (err) {
    assert.instance(err, EhcError);
    return (err as EhcError).code;
  }
}

const inFive = new Date(NOW.getTime() + 5 * 60_000);

test('local-first: a local dynamic code is decided by the card and its usage record is queued', async () => {
  const s = await setup('local-first');
  try {
    const r = await s.verifier.verify({ ehealthCode: await s.local(inFive), scannerId: 'tty-1', termId: '3502A0001STMA0002' });
    assert.is(r.decided_by, 'local');
    assert.is(r.id_no, PATIENT.idNo);
    assert.is(r.id_type, '01');
    assert.is(r.code_type, 'dynamic');
    assert.is(r.expires_at, inFive.toISOString());
    assert.is(r.identity_check_required, false);
    assert.is(r.offline, false);
    assert.is(r.term_id, '3502A0001STMA0002');
    assert.ok(r.out_verify_no.length <= 32);
    assert.is(s.upstream.calls.length, 0);
    assert.is(s.outbox.entries.length, 1);
    const e = s.outbox.entries[0]!;
    assert.is(e.kind, 'usage');
    assert.is(e.method, 'ehc.ehealthcode.verify');
    assert.is(e.biz.out_verify_no, r.out_verify_no);
    assert.is(e.biz.out_verify_time, r.out_verify_time);
    assert.is(e.termId, '3502A0001STMA0002');
    assert.is(e.scannerId, 'tty-1');
  } finally {
    s.cleanup();
  }
});

test('expiry honours the clock-skew allowance: 2001 beyond it, accepted within it', async () => {
  const s = await setup('local-first');
  try {
    assert.is(await code(s.verifier.verify({ ehealthCode: await s.local(new Date(NOW.getTime() - 31_000)) })), '2001');
    assert.is(await code(s.verifier.verify({ ehealthCode: await s.local(new Date(NOW.getTime() - 29_000)) })), '0000');
    assert.is(s.outbox.entries.length, 1, 'a rejected code leaves no usage record');
  } finally {
    s.cleanup();
  }
});

test('static codes are flagged for a supplementary identity check', async () => {
  const s = await setup('local-first');
  try {
    const r = await s.verifier.verify({ ehealthCode: await s.local() });
    assert.is(r.code_type, 'static');
    assert.is(r.identity_check_required, true);
    assert.is(r.expires_at, undefined);
  } finally {
    s.cleanup();
  }
});

test('tampered and malformed codes get their spec codes', async () => {
  const s = await setup('local-first');
  try {
    const good = await s.local(inFive);
    const [ehcid, tag, valid, app] = good.split(':') as [string, string, string, string];
    const flip = (h: string, i: number) => h.slice(0, i) + (h[i] === '0' ? '1' : '0') + h.slice(i + 1);
    assert.is(await code(s.verifier.verify({ ehealthCode: `${flip(ehcid, 60)}:${tag}:${valid}:${app}` })), '2002');
    assert.is(await code(s.verifier.verify({ ehealthCode: `${ehcid}:${tag}:${flip(valid, 30)}:${app}` })), '2004');
    assert.is(await code(s.verifier.verify({ ehealthCode: `${ehcid}:${tag}::${app}` })), '2003');
    assert.is(await code(s.verifier.verify({ ehealthCode: 'not a code' })), '2002');
  } finally {
    s.cleanup();
  }
});

test('foreign codes go cross-domain; offline they fail 8004 or are deferred on request', async () => {
  const s = await setup('local-first');
  try {
    const c = await s.foreign(inFive);
    const r = await s.verifier.verify({ ehealthCode: c });
    assert.is(r.decided_by, 'cross-domain');
    assert.is(r.user_name, '陈俊海');
    assert.is(s.upstream.calls[0]?.method, 'ehn.ehealthcard.syncCheckErhcInfo');
    assert.is(s.upstream.calls[0]?.termId, `${LOCAL_EHCIN}STMA0001`);
    s.upstream.mode = 'down';
    assert.is(await code(s.verifier.verify({ ehealthCode: c })), '8004');
    const d = await s.verifier.verify({ ehealthCode: c, defer: true });
    assert.is(d.decided_by, 'deferred');
    assert.is(d.offline, true);
    assert.is(s.outbox.entries.at(-1)?.kind, 'deferred');
    assert.is(s.outbox.entries.at(-1)?.biz.out_verify_no, d.out_verify_no);
    s.upstream.mode = { code: '2001' };
    assert.is(await code(s.verifier.verify({ ehealthCode: c, defer: true })), '2001', 'a business answer is not deferred');
  } finally {
    s.cleanup();
  }
});

test('upstream-first asks the home system and falls back to the card when it is unreachable', async () => {
  const s = await setup('upstream-first');
  try {
    const c = await s.local(inFive);
    const r = await s.verifier.verify({ ehealthCode: c });
    assert.is(r.decided_by, 'upstream');
    assert.is(s.outbox.entries.length, 0);
    s.upstream.mode = 'down';
    const o = await s.verifier.verify({ ehealthCode: c });
    assert.is(o.decided_by, 'offline-local');
    assert.is(o.offline, true);
    assert.is(o.id_no, PATIENT.idNo);
    assert.is(s.outbox.entries.length, 1);
    s.upstream.mode = { code: '2002' };
    assert.is(await code(s.verifier.verify({ ehealthCode: c })), '2002', 'a refusal from the home system is final');
  } finally {
    s.cleanup();
  }
});

test('upstream-only never uses the card; unreachable → 8004', async () => {
  const s = await setup('upstream-only');
  try {
    const c = await s.local(inFive);
    assert.is((await s.verifier.verify({ ehealthCode: c })).decided_by, 'upstream');
    s.upstream.mode = 'down';
    assert.is(await code(s.verifier.verify({ ehealthCode: c })), '8004');
  } finally {
    s.cleanup();
  }
});

test('a failing card is 8008 with a clear message, never a crash; observers see both outcomes', async () => {
  const s = await setup('local-first');
  try {
    const seen: string[] = [];
    const v = new (s.verifier.constructor as typeof RoutingVerifier)({
      card: s.card,
      upstream: s.upstream,
      settings: settings('local-first'),
      now: () => NOW,
      observers: [{ verified: (r) => void seen.push(r.ret_code), rejected: (e) => void seen.push(e.code) }],
    });
    const c = await s.local(inFive);
    assert.is(await code(v.verify({ ehealthCode: c })), '0000');
    await s.card.close();
    assert.is(await code(v.verify({ ehealthCode: c })), '8008');
    assert.equal(seen, ['0000', '8008']);
  } finally {
    s.cleanup();
  }
});

test.run();
