/**
 * Random bytes for the hot path. Each `crypto.randomBytes` call is one trip into OpenSSL's DRBG;
 * profiling the verify path showed ~7% of CPU there for ids and IVs of a few bytes each. This draws
 * them from a 4 KiB block filled by the same CSPRNG, refilled when used up (each byte is used once).
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

export function pooledRandomBytes(length: number): Buffer {
  if (length > POOL_SIZE / 4) return randomFillSync(Buffer.allocUnsafe(length));
  if (offset + length > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + length)); // a copy: the pool is reused
  offset += length;
  return out;
}
