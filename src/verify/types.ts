/**
 * The Verifier: one answer to "who is this patient?" for a scanned or posted code.
 * Scanner pipeline, HIS port and tools all call it; it routes by EHCIN and policy.
 */
import type { UpstreamIdentity } from '../protocol/upstream.ts';

export type DecidedBy = 'local' | 'upstream' | 'cross-domain' | 'offline-local' | 'deferred';
export type { VerifyPolicy } from '../config/schema.ts';

export interface VerifyRequest {
  ehealthCode: string;
  treatmentCode?: string;
  operatorId?: string;
  operatorName?: string;
  /** 识读终端 (STM) number of the scanner that read it; defaults to the appliance's term_id */
  termId?: string;
  scannerId?: string;
  /** queue for the upstream instead of failing with 8004 when it is unreachable */
  defer?: boolean;
}

export interface VerifyResult {
  ret_code: '0000';
  ret_msg: string;
  decided_by: DecidedBy;
  code_type: 'dynamic' | 'static';
  ehcin: string;
  ehcappid: string;
  ehealth_card_id: string;
  id_type?: string;
  id_no?: string;
  user_name?: string;
  /** dynamic codes: the expiry encoded in VALID (ISO 8601) */
  expires_at?: string;
  /** static codes: the standard recommends a supplementary identity check (§5.2.3) */
  identity_check_required: boolean;
  offline: boolean;
  out_verify_no: string;
  out_verify_time: string;
  term_id: string;
  /** decided locally while the system clock was suspect (verify.clock.policy accept-and-flag) */
  clock_suspect?: boolean;
  /** identity fields the home system returned, when it was asked */
  upstream?: UpstreamIdentity;
}

export interface Verifier {
  /** Resolves with a `0000` result; rejects with an EhcError carrying the spec code. */
  verify(request: VerifyRequest): Promise<VerifyResult>;
}
