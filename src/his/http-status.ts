/** One mapping from spec return codes to HTTP statuses on the HIS port. */
import type { ReturnCode } from '../errors.ts';

export function httpStatusFor(code: ReturnCode | string): 200 | 400 | 401 | 413 | 422 | 500 | 502 | 503 {
  if (code === '0000') return 200;
  if (code === '9001' || code === '8003') return 400;
  if (code === '1010') return 401;
  if (['2001', '2002', '2003', '2004', '3001'].includes(code)) return 422;
  // the card or the home system is not available: try again later
  if (['8008', '2005', '8001', '8002', '8004', '3003', '8005', '8006', '8007'].includes(code)) return 503;
  // the home system answered something we cannot accept (bad digest, protocol refusal)
  if (code.startsWith('1') || code.startsWith('9') || code === '3002') return 502;
  return 500;
}
