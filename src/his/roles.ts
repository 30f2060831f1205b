/**
 * Roles on the HIS port, separate from the failed-auth throttle (src/his/auth-throttle.ts) that sits in
 * front of every key class:
 *   his     his.apiKeys: everything the HIS/kiosk needs (verify, scan stream with identities, inject …)
 *   viewer  his.viewerKeys: read only — status page data (/v1/status), /metrics, /v1/history, the scan
 *           stream and scanner list without identity fields; cannot verify or inject
 * `readAuth` admits both and records which one passed; `viewerView` is what a viewer sees of an event.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import { bearerCheck, combinedKeyList, keyMatcher, type AuthFailure } from './auth.ts';

export type Role = 'his' | 'viewer';

const ROLE = 'ehcRole';

/** The role the request's key has (set by readAuth; `his` behind the HIS-only middleware). */
export function roleOf(c: Context): Role {
  return ((c.get as (k: string) => unknown)(ROLE) as Role | undefined) ?? 'his';
}

export function readAuth(o: { hisKeys: readonly string[]; viewerKeys: readonly string[]; onFailure?: (c: Context, why: AuthFailure, presented: string | undefined) => void }): MiddlewareHandler {
  const isHis = keyMatcher(o.hisKeys);
  const check = bearerCheck({ keys: combinedKeyList(o.hisKeys, o.viewerKeys), realm: 'ehc-edge', onFailure: o.onFailure ?? (() => {}) });
  return (c: Context, next: Next) =>
    check(c, async () => {
      const token = (c.req.header('Authorization') ?? '').replace(/^Bearer\s+/i, '');
      (c.set as (k: string, v: unknown) => void)(ROLE, isHis(token) ? 'his' : 'viewer');
      await next();
    });
}

/** Fields a viewer may see of a stream event or scanner entry: states, codes and routes, no identities. */
const VIEWER_FIELDS = new Set([
  'ret_code', 'ret_msg', 'decided_by', 'code_type', 'offline', 'identity_check_required', 'out_verify_no', 'out_verify_time', 'expires_at',
  'scannerId', 'scanner', 'station', 'termId', 'term_id', 'driver', 'state', 'reason', 'message', 'model', 'location', 'path', 'configured',
  'absentSince', 'seenBefore', 'openedAt', 'scans', 'status', 'at', 'time', 'lastEventId', 'oldestAvailable', 'bufferLimit', 'seq',
]);

/** An event's data as a viewer sees it: only the allow-listed fields (never names, ID numbers, scan text). */
export function viewerView(data: unknown): unknown {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return {};
  return Object.fromEntries(Object.entries(data as Record<string, unknown>).filter(([k, v]) => VIEWER_FIELDS.has(k) && (v === null || typeof v !== 'object')));
}
