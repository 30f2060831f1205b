/**
 * Webhook signatures (HMAC-SM3). Every POST to a HIS webhook carries
 *
 *   X-EHC-Delivery:  <delivery id>   the same id on every retry of one delivery
 *   X-EHC-Timestamp: <unix seconds>  when this attempt was signed
 *   X-EHC-Signature: hmac-sm3=<64 hex> of `${timestamp}.${deliveryId}.${body}` under the shared secret
 *
 * A receiver checks the signature (tampering), refuses a timestamp outside its tolerance (replay of a
 * captured request), and treats a delivery id it has already processed as a duplicate: answer 2xx,
 * do not process it again. Each retry is signed afresh, so a legitimate redelivery after an appliance
 * restart is within tolerance and is recognised by its id; an old request played back is not.
 * This module is both sides: `signWebhook` for the appliance, `verifyWebhook` for receivers and tests
 * (docs/integration/ has the same check in JavaScript, Java and C#).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-ehc-signature';
export const TIMESTAMP_HEADER = 'x-ehc-timestamp';
export const DELIVERY_HEADER = 'x-ehc-delivery';

export function webhookSignature(secret: string, timestamp: number, deliveryId: string, body: string): string {
  return createHmac('sm3', secret).update(`${timestamp}.${deliveryId}.${body}`).digest('hex');
}

export function signWebhook(secret: string, deliveryId: string, body: string, now: number = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    [DELIVERY_HEADER]: deliveryId,
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: `hmac-sm3=${webhookSignature(secret, timestamp, deliveryId, body)}`,
  };
}

export type WebhookCheck = { ok: true; deliveryId: string; duplicate: boolean } | { ok: false; why: 'missing-headers' | 'bad-signature' | 'stale-timestamp' };

export interface VerifyWebhookOptions {
  secret: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** accepted distance of the timestamp from the receiver's clock (default 300 s) */
  toleranceSeconds?: number;
  /** delivery ids already processed (kept at least as long as the tolerance); the id is added when ok */
  seen?: Set<string>;
  now?: number;
}

export function verifyWebhook(o: VerifyWebhookOptions): WebhookCheck {
  const header = (name: string) => {
    const v = o.headers[name] ?? o.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const deliveryId = header(DELIVERY_HEADER);
  const timestampText = header(TIMESTAMP_HEADER);
  const signature = /^hmac-sm3=([0-9a-f]{64})$/.exec(header(SIGNATURE_HEADER) ?? '')?.[1];
  if (!deliveryId || !timestampText || !/^\d{1,12}$/.test(timestampText) || !signature) return { ok: false, why: 'missing-headers' };
  const timestamp = Number(timestampText);
  const expected = Buffer.from(webhookSignature(o.secret, timestamp, deliveryId, o.body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return { ok: false, why: 'bad-signature' };
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > (o.toleranceSeconds ?? 300)) return { ok: false, why: 'stale-timestamp' };
  const duplicate = o.seen?.has(deliveryId) ?? false;
  o.seen?.add(deliveryId);
  return { ok: true, deliveryId, duplicate };
}
