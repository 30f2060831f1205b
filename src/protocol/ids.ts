/**
 * `out_verify_no`: the caller's unique serial of a verification (≤ 32 chars). Minted once per
 * verification, stored with any outbox record before the first send, and replayed unchanged.
 * Form: 17 digits of CST time (yyyyMMddHHmmssSSS) + 15 random base-36 characters = 32 chars:
 * time-ordered for humans, unique across restarts and processes by ~77 bits of randomness.
 */
import { randomBytes } from 'node:crypto';
import { formatCst } from '../crypto/profile.ts';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

export function newOutVerifyNo(now: Date = new Date()): string {
  const bytes = randomBytes(15);
  let tail = '';
  for (const b of bytes) tail += ALPHABET[b % 36];
  return formatCst(now) + String(now.getUTCMilliseconds()).padStart(3, '0') + tail;
}

/** `out_verify_time`: yyyyMMddHHmmss in China Standard Time. */
export function outVerifyTime(now: Date = new Date()): string {
  return formatCst(now);
}
