/**
 * Bearer API keys for the HIS/kiosk port (`his.apiKeys`): each entry is a key, or `sm3:<hex>` of one
 * so the config need not hold the key itself. Keys are compared as SM3 digests in constant time.
 * Uses Hono's bearerAuth middleware; failed attempts are reported to `onFailure` (audit, metrics).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';

export function sm3Hex(text: string): string {
  return createHash('sm3').update(text, 'utf8').digest('hex');
}

/** Digests of the configured keys, ready for comparison. */
export function keyDigests(entries: readonly string[]): Buffer[] {
  return entries.map((e) => Buffer.from(e.startsWith('sm3:') ? e.slice(4).toLowerCase() : sm3Hex(e), 'hex'));
}

export function matchesKey(token: string, digests: readonly Buffer[]): boolean {
  const d = Buffer.from(sm3Hex(token), 'hex');
  let ok = false;
  for (const k of digests) ok = timingSafeEqual(d, k) || ok; // no early exit
  return ok;
}

export interface AuthOptions {
  keys: readonly string[];
  realm?: string;
  onFailure?: (c: Context, reason: 'missing' | 'invalid') => void;
}

export function apiKeyAuth(o: AuthOptions): MiddlewareHandler {
  const digests = keyDigests(o.keys);
  const body = (msg: string) => ({ ret_code: '1010', ret_msg: msg });
  return bearerAuth({
    realm: o.realm ?? 'ehc-edge',
    verifyToken: (token, c) => {
      const ok = matchesKey(token, digests);
      if (!ok) o.onFailure?.(c, 'invalid');
      return ok;
    },
    noAuthenticationHeaderMessage: (c: Context) => {
      o.onFailure?.(c, 'missing');
      return body('no permission: send Authorization: Bearer <api key>');
    },
    invalidAuthenticationHeaderMessage: body('no permission: malformed Authorization header'),
    invalidTokenMessage: body('no permission: unknown api key'),
  });
}
