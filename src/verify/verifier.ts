/**
 * The Verifier: routes a code by its issuing card system (EHCIN) and the configured policy.
 *
 *   local code, card holds the keys      local-first     → card; usage record → outbox        `local`
 *                                         upstream-first  → home system; unreachable, busy or
 *                                                            link open → card (no wait)          `upstream` | `offline-local`
 *                                         upstream-only   → home system                         `upstream`
 *   code of another card system           → cross-domain verify at the home system               `cross-domain`
 *   code in older numbering (no EHCIN)    → verify at the home system                            `upstream`
 *   home system unreachable, not local    → 8004, or queued when the caller asked to defer       `deferred`
 *
 * Expiry of dynamic codes is checked against the card's decryption of VALID with a clock-skew
 * allowance. Static codes are flagged for a supplementary identity check (§5.2.3). Card missing or
 * failing → 8008; nothing here crashes the process.
 */
import { EhcError, asEhcError } from '../errors.ts';
import { parseHealthCode, type HealthCode } from '../code/parse.ts';
import type { CryptoCard } from '../crypto/card.ts';
import { METHOD_CROSS_DOMAIN, METHOD_VERIFY, type Upstream, type UpstreamIdentity, type UpstreamMethod, type VerifyBiz } from '../protocol/upstream.ts';
import { newOutVerifyNo, outVerifyTime } from '../protocol/ids.ts';
import type { Outbox, OutboxEntry } from '../store/outbox.ts';
import type { DecidedBy, Verifier, VerifyPolicy, VerifyRequest, VerifyResult } from './types.ts';

/**
 * Failures that mean "the home system could not be asked" (not "it said no"): the network (8001,
 * 8002, 8004 — also at once while the link's circuit breaker is open, src/protocol/link-breaker.ts)
 * and the home system's own 3003 (资源繁忙, busy): a local code is then decided by the card.
 */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['8001', '8002', '8004', '3003']);

export interface VerifierSettings {
  localEhcins: readonly string[];
  policy: VerifyPolicy;
  clockSkewSeconds: number;
  treatmentCode: string;
  operatorId: string;
  operatorName: string;
  termId: string;
}

export interface VerifyObserver {
  /**
   * Runs before any observer hears of an answer, which waits for it: a rejection turns the verification
   * into that rejection (audit.onFailure = refuse: an identity goes out only with its audit record fsync'd),
   * so nobody counts as verified what is then withheld
   */
  admit?(result: VerifyResult, request: VerifyRequest): void | Promise<void>;
  /** the answer goes out; `elapsedMs` includes admit()'s wait */
  verified?(result: VerifyResult, request: VerifyRequest, elapsedMs: number): void;
  rejected?(error: EhcError, request: VerifyRequest, elapsedMs: number): void;
}

export interface VerifierDeps {
  card: CryptoCard;
  upstream: Upstream;
  /** where usage records and deferred requests go; without one, `defer` is refused and local-first answers stay local */
  outbox?: Pick<Outbox, 'append'>;
  settings: VerifierSettings;
  now?: () => Date;
  /** clock discipline (src/ops/clock-discipline.ts): its corrected now(), and whether the clock is suspect */
  clock?: { now(): Date; suspect(): string | undefined; readonly policy: 'refuse' | 'accept-and-flag' };
  observers?: VerifyObserver[];
}

interface LocalAnswer {
  idType: string;
  idNo: string;
  expiresAt?: Date;
  /** decided on a suspect clock under verify.clock.policy accept-and-flag */
  clockSuspect?: boolean;
}

export class RoutingVerifier implements Verifier {
  private readonly now: () => Date;
  private readonly local: ReadonlySet<string>;

  constructor(private readonly deps: VerifierDeps) {
    this.now = deps.now ?? (deps.clock ? () => deps.clock!.now() : () => new Date());
    this.local = new Set(deps.settings.localEhcins);
  }

  async verify(request: VerifyRequest): Promise<VerifyResult> {
    const started = performance.now();
    try {
      const result = await this.decide(request);
      const observers = this.deps.observers ?? [];
      const waits: Promise<void>[] = [];
      for (const o of observers) {
        const w = o.admit?.(result, request);
        if (w) waits.push(w);
      }
      if (waits.length > 0) await Promise.all(waits);
      const elapsedMs = performance.now() - started;
      for (const o of observers) o.verified?.(result, request, elapsedMs);
      return result;
    } catch (err) {
      const error = asEhcError(err, '8009', 'verification failed');
      for (const o of this.deps.observers ?? []) o.rejected?.(error, request, performance.now() - started);
      throw error;
    }
  }

  private async decide(request: VerifyRequest): Promise<VerifyResult> {
    const code = parseHealthCode(request.ehealthCode);
    const now = this.now();
    const s = this.deps.settings;
    const biz: VerifyBiz = {
      ehealth_code: code.raw,
      treatment_code: request.treatmentCode ?? s.treatmentCode,
      operator_id: request.operatorId ?? s.operatorId,
      operator_name: request.operatorName ?? s.operatorName,
      out_verify_no: newOutVerifyNo(now),
      out_verify_time: outVerifyTime(now),
    };
    const termId = request.termId ?? s.termId;
    const isLocal = code.ehcin !== null && this.local.has(code.ehcin);

    if (isLocal && s.policy === 'local-first') {
      const answer = await this.verifyLocally(code, now);
      await this.queue('usage', METHOD_VERIFY, biz, termId, request);
      return this.result(code, biz, termId, 'local', answer);
    }
    if (isLocal && s.policy === 'upstream-first') {
      try {
        const identity = await this.deps.upstream.call(METHOD_VERIFY, biz, { termId });
        return this.result(code, biz, termId, 'upstream', undefined, identity);
      } catch (err) {
        const e = asEhcError(err, '8004', 'home card system');
        if (!UNREACHABLE_CODES.has(e.code)) throw e;
        const answer = await this.verifyLocally(code, now);
        await this.queue('usage', METHOD_VERIFY, biz, termId, request);
        return this.result(code, biz, termId, 'offline-local', answer);
      }
    }
    // upstream-only, foreign codes and codes in older numbering: the home system decides
    const crossDomain = code.ehcin !== null && !isLocal;
    const method: UpstreamMethod = crossDomain ? METHOD_CROSS_DOMAIN : METHOD_VERIFY;
    try {
      const identity = await this.deps.upstream.call(method, biz, { termId });
      return this.result(code, biz, termId, crossDomain ? 'cross-domain' : 'upstream', undefined, identity);
    } catch (err) {
      const e = asEhcError(err, '8004', 'home card system');
      if (!UNREACHABLE_CODES.has(e.code) || !request.defer) throw e;
      if (!this.deps.outbox) throw new EhcError('8004', `${e.message}; deferral is not available (no outbox)`, { cause: e });
      await this.queue('deferred', method, biz, termId, request);
      return this.result(code, biz, termId, 'deferred');
    }
  }

  private async verifyLocally(code: HealthCode, now: Date): Promise<LocalAnswer> {
    const card = this.deps.card;
    try {
      const { idType, idNo } = await card.decryptEhcid(code.ehcid);
      if (code.codeType === 'static') return { idType, idNo };
      const suspect = this.deps.clock?.suspect();
      if (suspect && this.deps.clock!.policy === 'refuse') throw new EhcError('8008', `cannot decide a dynamic code locally: ${suspect} (verify.clock.policy refuse)`);
      const expiresAt = await card.decryptValidity(code.valid);
      if (now.getTime() > expiresAt.getTime() + this.deps.settings.clockSkewSeconds * 1000) {
        throw new EhcError('2001', `health code expired at ${expiresAt.toISOString()}`);
      }
      return { idType, idNo, expiresAt, ...(suspect ? { clockSuspect: true } : {}) };
    } catch (err) {
      throw asEhcError(err, '8008', 'crypto card failed');
    }
  }

  private async queue(kind: OutboxEntry['kind'], method: UpstreamMethod, biz: VerifyBiz, termId: string, request: VerifyRequest): Promise<void> {
    const outbox = this.deps.outbox;
    if (!outbox) return;
    const entry: OutboxEntry = { kind, method, biz, termId, createdAt: this.now().toISOString() };
    if (request.scannerId) entry.scannerId = request.scannerId;
    try {
      await outbox.append(entry);
    } catch (err) {
      throw asEhcError(err, '8007', 'outbox append failed');
    }
  }

  private result(code: HealthCode, biz: VerifyBiz, termId: string, decidedBy: DecidedBy, local?: LocalAnswer, identity?: UpstreamIdentity): VerifyResult {
    const result: VerifyResult = {
      ret_code: '0000',
      ret_msg: decidedBy === 'deferred' ? 'queued for the home card system' : 'ok',
      decided_by: decidedBy,
      code_type: code.codeType,
      ehcin: code.ehcin ?? '',
      ehcappid: code.ehcappid,
      ehealth_card_id: code.ehcid,
      identity_check_required: code.codeType === 'static',
      offline: decidedBy === 'offline-local' || decidedBy === 'deferred',
      out_verify_no: biz.out_verify_no,
      out_verify_time: biz.out_verify_time,
      term_id: termId,
    };
    if (local) {
      result.id_type = local.idType;
      result.id_no = local.idNo;
      if (local.expiresAt) result.expires_at = local.expiresAt.toISOString();
      if (local.clockSuspect) result.clock_suspect = true;
    }
    if (identity) {
      if (typeof identity.id_type === 'string') result.id_type = identity.id_type;
      if (typeof identity.id_no === 'string') result.id_no = identity.id_no;
      if (typeof identity.user_name === 'string') result.user_name = identity.user_name;
      if (typeof identity.ehealth_card_id === 'string' && identity.ehealth_card_id) result.ehealth_card_id = identity.ehealth_card_id;
      result.upstream = identity;
    }
    return result;
  }
}
