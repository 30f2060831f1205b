/**
 * Serial numbers of upstream calls. `out_verify_no` (≤ 32 chars, 附录A) must be unique across
 * restarts and processes: 17 digits of CST time to the millisecond (so serials sort by time and a
 * restart cannot repeat an earlier one) + 15 hex digits of randomness (60 bits, so two processes in
 * the same millisecond do not collide) = exactly 32 characters.
 */
import { pooledRandomBytes } from '../platform/random-pool.ts';
import { formatCst } from '../platform/time.ts';

export function newOutVerifyNo(now: Date = new Date()): string {
  const ms = String(now.getUTCMilliseconds()).padStart(3, '0');
  return formatCst(now) + ms + pooledRandomBytes(8).toString('hex').slice(0, 15);
}

/** `out_verify_time`: yyyyMMddHHmmss in China Standard Time. */
export function outVerifyTime(date: Date = new Date()): string {
  return formatCst(date);
}
