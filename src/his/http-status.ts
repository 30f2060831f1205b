/**
 * One mapping from errors to HTTP statuses on the HIS port. It switches on the error's class first
 * (src/errors.ts); a bare EhcError, or a home system's own answer, is mapped by its return code.
 */
import { BadRequestError, CardError, EhcError, UpstreamAnswerError, UpstreamUnreachableError, type ReturnCode } from '../errors.ts';

type HisStatus = 200 | 400 | 401 | 413 | 422 | 500 | 502 | 503;

export function httpStatusFor(error: EhcError | ReturnCode | string): HisStatus {
  if (!(error instanceof EhcError)) return statusForCode(error);
  if (error instanceof BadRequestError) return 400;
  // the card or the home system is not available: try again later
  if (error instanceof UpstreamUnreachableError || error instanceof CardError) return 503;
  // the home system answered a refusal: its own code says whether the code or the request was wrong
  if (error instanceof UpstreamAnswerError) return statusForCode(error.code);
  return statusForCode(error.code);
}

function statusForCode(code: ReturnCode | string): HisStatus {
  if (code === '0000') return 200;
  if (code === '9001' || code === '8003') return 400;
  if (code === '1010') return 401;
  if (['2001', '2002', '2003', '2004', '3001'].includes(code)) return 422;
  if (['8008', '2005', '8001', '8002', '8004', '3003', '8005', '8006', '8007'].includes(code)) return 503;
  // the home system answered something we cannot accept (bad digest, protocol refusal)
  if (code.startsWith('1') || code.startsWith('9') || code === '3002') return 502;
  return 500;
}
