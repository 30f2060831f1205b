/**
 * The Verifier's observer for operations: every verification, on any route (scanner, HIS, kiosk),
 * becomes an audit record and a usage count (a deferred one's later answer: deferredAnswerAudit below);
 * every rejection an audit record and an error count by return code. A rejected digest (9003) is a
 * security event.
 *
 * Wiring: `new RoutingVerifier({ …, observers: [opsObserver({ audit, stats, defaultOperator })] })`.
 * audit.onFailure = refuse (the default): an answer that carries identity waits until its audit record is
 * fsync'd (admit(), before any observer hears of it: a withheld answer is counted once, as the rejection), and
 * is withheld (8007) when the record cannot be written — no identity leaves the appliance
 * unaudited, as 等保 2.0 三级 asks of audit (审计记录受保护, 不被未预期的删除、修改或覆盖). Answers without
 * identity (rejections) and audit.onFailure = continue append without waiting (record()): a failed append
 * is logged, counted in audit.state().failures and shown by status, and the answer goes out anyway.
 */
import { EhcError } from '../errors.ts';
import type { VerifyObserver } from '../verify/verifier.ts';
import type { VerifyRequest, VerifyResult } from '../verify/types.ts';
import type { AuditEvent } from './audit.ts';
import type { DeferredAnswer } from '../store/outbox.ts';

export interface OpsObserverDeps {
  audit?: { record(event: AuditEvent): void; append?(event: AuditEvent): Promise<unknown> };
  /** config audit.onFailure (default refuse) */
  onFailure?: 'refuse' | 'continue';
  stats?: {
    recordVerification(result: Pick<VerifyResult, 'decided_by' | 'offline' | 'out_verify_time'>, ctx?: { treatmentCode?: string }): void;
    recordError(retCode: string): void;
  };
  /** config verify.operatorId, used when a request names no operator (scanner desks) */
  defaultOperator?: string;
}

/** An answer that carries identity waits for its audit record under audit.onFailure = refuse (the default). */
function awaitsAudit(deps: Pick<OpsObserverDeps, 'audit' | 'onFailure'>, identity: boolean): boolean {
  return (deps.onFailure ?? 'refuse') === 'refuse' && identity && deps.audit?.append !== undefined;
}

/** The awaited append of such an answer: a record that cannot be written withholds it (8007, saying what is withheld). */
async function appendOrWithhold(audit: NonNullable<OpsObserverDeps['audit']>, event: AuditEvent, withheld: string): Promise<void> {
  try {
    await audit.append!(event);
  } catch (err) {
    throw new EhcError('8007', `audit trail cannot be written (${(err as Error)?.message ?? err}); ${withheld} (audit.onFailure = refuse)`, { cause: err });
  }
}

export function opsObserver(deps: OpsObserverDeps): VerifyObserver {
  const event = (result: VerifyResult, request: VerifyRequest): AuditEvent => ({
    kind: 'verify',
    action: 'verify',
    route: result.decided_by,
    terminal: result.term_id,
    scanner: request.scannerId,
    operator: request.operatorId ?? deps.defaultOperator,
    retCode: result.ret_code,
    subject: {
      idType: result.id_type,
      idNo: result.id_no,
      name: result.user_name ?? result.upstream?.user_name,
      phone: typeof result.upstream?.mobile_phone === 'string' ? result.upstream.mobile_phone : undefined,
      ehealthCardId: result.ehealth_card_id,
    },
    detail: { out_verify_no: result.out_verify_no, code_type: result.code_type, ehcin: result.ehcin, offline: result.offline },
  });
  const waits = (result: VerifyResult) => awaitsAudit(deps, Boolean(result.id_no || result.user_name || result.upstream?.user_name));
  return {
    admit(result: VerifyResult, request: VerifyRequest) {
      if (!waits(result)) return undefined;
      return appendOrWithhold(deps.audit!, event(result, request), 'the answer is withheld');
    },
    verified(result: VerifyResult, request: VerifyRequest) {
      deps.stats?.recordVerification(result, { treatmentCode: request.treatmentCode });
      if (!waits(result)) deps.audit?.record(event(result, request));
    },
    rejected(error: EhcError, request: VerifyRequest) {
      deps.stats?.recordError(error.code);
      const digest = error.code === '9003';
      deps.audit?.record({
        kind: digest ? 'security' : 'verify',
        action: digest ? 'digest.rejected' : 'verify.rejected',
        terminal: request.termId,
        scanner: request.scannerId,
        operator: request.operatorId ?? deps.defaultOperator,
        retCode: error.code,
        subject: { ehealthCode: request.ehealthCode },
        detail: { message: error.message },
      });
    },
  };
}

/**
 * The audit of a deferred verification's answer (replay's `auditAnswer`): the home system's identity
 * reaches the desks later, through GET /v1/verify/{out_verify_no}, the scan stream and webhooks —
 * under audit.onFailure = refuse only once this record is fsync'd; when it cannot be written the
 * rejection withholds the identity (replay keeps and publishes the 8007). Answers without identity
 * (a rejection, 3002) and audit.onFailure = continue append without waiting.
 */
export function deferredAnswerAudit(deps: Pick<OpsObserverDeps, 'audit' | 'onFailure'>): (answer: DeferredAnswer, termId: string) => Promise<void> {
  return async (answer, termId) => {
    const id = answer.identity;
    const event: AuditEvent = {
      kind: 'verify',
      action: 'verify.deferred-answer',
      route: 'deferred',
      terminal: termId,
      retCode: answer.retCode,
      ...(id
        ? { subject: { idType: id.id_type, idNo: id.id_no, name: id.user_name, phone: typeof id.mobile_phone === 'string' ? id.mobile_phone : undefined, ehealthCardId: id.ehealth_card_id } }
        : {}),
      detail: { out_verify_no: answer.outVerifyNo, answered_at: answer.answeredAt, ...(answer.retCode === '0000' ? {} : { message: answer.retMsg }) },
    };
    if (awaitsAudit(deps, Boolean(id?.id_no || id?.user_name))) return appendOrWithhold(deps.audit!, event, "the deferred answer's identity is withheld");
    deps.audit?.record(event);
  };
}
