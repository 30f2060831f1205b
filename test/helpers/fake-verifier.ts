/** A Verifier stand-in for scanner tests: answers from the request, records what it was asked. */
import { EhcError } from '../../src/errors.ts';
import type { Verifier, VerifyRequest, VerifyResult } from '../../src/verify/types.ts';

export function healthCode(n: number, tag: 0 | 1 = 0): string {
  const ehcid = n.toString(16).toUpperCase().padStart(64, '0');
  return `${ehcid}:${tag}:${tag === 0 ? '7F4D9C5D163963FFF9BE8DEB29037A75' : ''}::35020001001`;
}

export class FakeVerifier implements Verifier {
  readonly requests: VerifyRequest[] = [];
  /** codes answered with 2002 */
  readonly reject = new Set<string>();

  async verify(request: VerifyRequest): Promise<VerifyResult> {
    this.requests.push(request);
    if (this.reject.has(request.ehealthCode)) throw new EhcError('2002', 'code illegal (fake)');
    return {
      ret_code: '0000',
      ret_msg: 'ok',
      decided_by: 'local',
      code_type: 'dynamic',
      ehcin: '3502A0001',
      ehcappid: '35020001001',
      ehealth_card_id: request.ehealthCode.slice(0, 64),
      id_type: '01',
      id_no: '350203199001011234',
      user_name: '张三丰',
      identity_check_required: false,
      offline: false,
      out_verify_no: 'V' + this.requests.length,
      out_verify_time: '20261126120000',
      term_id: request.termId ?? 'none',
    };
  }
}
