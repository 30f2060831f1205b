/**
 * Bearer API keys for the HIS/kiosk port (`his.apiKeys`): each entry is a key, or `sm3:<hex>` of one
 * so the config need not hold the key itself. Keys are compared as SM3 digests in constant time.
 * Uses Hono's bearerAuth middleware; failed attempts are reported to `onFailure` (audit, metrics).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler, Next } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { HTTPException } from 'hono/http-exception';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { AuditEvent } from '../ops/audit.ts';
import type { Logger } from '../platform/log.ts';

export function sm3Hex(text: string): string {
  return createHash('sm3').update(text, 'utf8').digest('hex');
}

/** Digests of the configured keys, ready for comparison. */
/** The SM3 digest (hex) of a configured key entry: `sm3:<hex>` as written, a plain key digested. */
export function entryDigestHex(entry: string): string {
  return entry.startsWith('sm3:') ? entry.slice(4).toLowerCase() : sm3Hex(entry);
}

export function keyDigests(entries: readonly string[]): Buffer[] {
  return entries.map((e) => Buffer.from(entryDigestHex(e), 'hex'));
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
  onFailure?: (c: Context, why: AuthFailure, presented: string | undefined) => void;
}

/** The HIS API-key middleware of the app (`his.apiKeys`); failures go to `onFailure` (audit, log). */
export function apiKeyAuth(o: AuthOptions): MiddlewareHandler {
  return bearerCheck({ keys: o.keys, realm: o.realm ?? 'ehc-edge', onFailure: o.onFailure ?? (() => {}) });
}

/** What auth needs of the audit trail. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

/** A constant-time matcher over configured keys (`key` or `sm3:<hex>`). */
const reloadedKeys = new WeakMap<readonly string[], readonly string[]>();
/** A config reload (SIGHUP, src/config/reload.ts) replaces the key list the config started with. */
export function replaceKeyList(configured: readonly string[], next: readonly string[]): void {
  reloadedKeys.set(configured, [...next]);
  for (const d of derivedLists.get(configured) ?? []) reloadedKeys.set(d.list, [...next, ...d.extra]);
}

/** Lists built from a configured list plus others (e.g. HIS + viewer keys) follow its reloads too. */
const derivedLists = new WeakMap<readonly string[], Array<{ list: readonly string[]; extra: readonly string[] }>>();
export function combinedKeyList(base: readonly string[], extra: readonly string[]): readonly string[] {
  const list = [...base, ...extra];
  derivedLists.set(base, [...(derivedLists.get(base) ?? []), { list, extra }]);
  // a list replaced before this one was made (rotated keys applied at start) counts from the start
  const replaced = reloadedKeys.get(base);
  if (replaced) reloadedKeys.set(list, [...replaced, ...extra]);
  return list;
}

export function keyMatcher(keys: readonly string[]): (presented: string) => boolean {
  // digests follow a list replaced by a reload
  let derivedFrom: readonly string[] = keys;
  let digests = keyDigests(keys);
  return (presented) => {
    const now = reloadedKeys.get(keys) ?? keys;
    if (now !== derivedFrom) {
      digests = keyDigests(now);
      derivedFrom = now;
    }
    return matchesKey(presented, digests);
  };
}

/** Short non-reversible tag of a presented key, for the audit trail (never the key itself). */
export function keyTag(presented: string): string {
  return sm3Hex(presented).slice(0, 8);
}

/** The caller's address as the socket sees it ('unknown' when not served by @hono/node-server). */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Counts failures per client in a sliding minute and decides which to write to the audit trail. */
export class FailureTracker {
  private readonly byClient = new Map<string, { windowStart: number; count: number; suppressed: number }>();
  constructor(
    private readonly perMinute = 10,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Returns whether to audit this failure, and a count of earlier suppressed ones to report now. */
  note(client: string): { audit: boolean; suppressedBefore: number } {
    const now = this.clock();
    let s = this.byClient.get(client);
    let suppressedBefore = 0;
    if (!s || now - s.windowStart >= 60_000) {
      suppressedBefore = s?.suppressed ?? 0;
      s = { windowStart: now, count: 0, suppressed: 0 };
      this.byClient.set(client, s);
      if (this.byClient.size > 10_000) this.byClient.delete(this.byClient.keys().next().value!);
    }
    s.count++;
    const audit = s.count <= this.perMinute;
    if (!audit) s.suppressed++;
    return { audit, suppressedBefore };
  }
}

export type AuthFailure = 'missing' | 'malformed' | 'invalid';

export interface BearerCheckOptions {
  keys: readonly string[];
  realm: string;
  /** called on every failure, before the 401/400 answer goes out */
  onFailure(c: Context, why: AuthFailure, presented: string | undefined): void;
}

const DENIED = (why: string) => ({ ret_code: '1010', ret_msg: `无权限 no permission: ${why}` });

/**
 * Bearer check as a plain middleware: the answer to a failure is returned (not thrown), so it does not
 * depend on the app's onError; errors from later handlers pass through untouched.
 */
export function bearerCheck(options: BearerCheckOptions): MiddlewareHandler {
  const matches = keyMatcher(options.keys);
  const inner = bearerAuth({
    realm: options.realm,
    verifyToken: async (token) => matches(token),
    noAuthenticationHeader: { message: DENIED('missing Authorization: Bearer <key>') },
    invalidAuthenticationHeader: { message: DENIED('malformed Authorization header') },
    invalidToken: { message: DENIED('unknown key') },
  });
  return async (c: Context, next: Next) => {
    let passed = false;
    try {
      await inner(c, async () => {
        passed = true;
        await next();
      });
    } catch (err) {
      if (passed || !(err instanceof HTTPException)) throw err;
      const header = c.req.header('Authorization');
      const presented = header?.replace(/^Bearer\s+/i, '');
      const malformed = err.status === 400;
      options.onFailure(c, !header ? 'missing' : malformed ? 'malformed' : 'invalid', malformed ? undefined : presented);
      // RFC 6750 would allow 400 for a malformed header; the contract answers every failed check 401
      if (malformed) return c.json(DENIED('malformed Authorization header'), 401, { 'WWW-Authenticate': `Bearer realm="${options.realm}",error="invalid_request"` });
      return err.getResponse();
    }
  };
}

/**
 * For the HIS app's own `apiKeyAuth({ onFailure })`: audits and logs each failure the same way the throttled key check
 * does (client address, path, reason; at most `perMinute` records per client and minute).
 * `createHisApp({ …, onAuthFailure: auditAuthFailures({ audit, logger }) })`.
 */
export function auditAuthFailures(options: { audit?: AuditSink; logger?: Logger; perMinute?: number; clock?: () => number }): (c: Context, why: AuthFailure, presented: string | undefined) => void {
  const tracker = new FailureTracker(options.perMinute ?? 10, options.clock);
  return (c, why, presented) => {
    const client = clientAddress(c);
    const { audit, suppressedBefore } = tracker.note(client);
    if (audit) options.logger?.warn('HIS authentication failed', { client, why, path: c.req.path });
    if (suppressedBefore > 0) {
      options.audit?.record({ kind: 'security', action: 'auth.failed.suppressed', client, retCode: '1010', detail: { count: suppressedBefore } });
    }
    if (!audit) return;
    options.audit?.record({
      kind: 'security',
      action: 'auth.failed',
      route: c.req.path,
      client,
      retCode: '1010',
      detail: { why, method: c.req.method, ...(presented ? { key_tag: keyTag(presented) } : {}) },
    });
  };
}
