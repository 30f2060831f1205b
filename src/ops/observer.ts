/**
 * The Verifier's observer for operations: every verification, on any route (scanner, HIS, kiosk, replay
 * of a deferred one), becomes an audit record and a usage count; every rejection an audit record and an
 * error count by return code. A rejected digest (9003) is a security event.
 *
 * Wiring: `new RoutingVerifier({ …, observers: [opsObserver({ audit, stats, defaultOperator })] })`.
 * Audit appends are fire-and-forget here (record()): the verification answer does not wait for the fsync;
 * a failed append is logged and counted in audit.state().failures, which the status page shows.
 */
import type { EhcError } from '../errors.ts';
import type { VerifyObserver } from '../verify/verifier.ts';
import type { VerifyRequest, VerifyResult } from '../verify/types.ts';
import type { AuditEvent } from './audit.ts';

export interface OpsObserverDeps {
  audit?: { record(event: AuditEvent): void };
  stats?: {
    recordVerification(result: Pick<VerifyResult, 'decided_by' | 'offline' | 'out_verify_time'>, ctx?: { treatmentCode?: string }): void;
    recordError(retCode: string): void;
  };
  /** config verify.operatorId, used when a request names no operator (scanner desks) */
  defaultOperator?: string;
}

export function opsObserver(deps: OpsObserverDeps): VerifyObserver {
  return {
    verified(result: VerifyResult, request: VerifyRequest) {
      deps.stats?.recordVerification(result, { treatmentCode: request.treatmentCode });
      deps.audit?.record({
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
