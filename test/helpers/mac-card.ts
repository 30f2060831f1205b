/**
 * A tiny CardPrimitives stand-in for the audit chain's only need, HMAC-SM3 by key index, over
 * node:crypto (OpenSSL sm3). Used until tests open the real SoftCard.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { AuditMacCard } from '../../src/ops/audit.ts';

export function macCard(key: Buffer = randomBytes(16), index = 4): AuditMacCard & { key: Buffer; index: number } {
  return {
    key,
    index,
    async hmacSm3(k: number, data: Uint8Array): Promise<Buffer> {
      if (k !== index) throw new Error(`no MAC key at index ${k}`);
      return createHmac('sm3', key).update(data).digest();
    },
  };
}
