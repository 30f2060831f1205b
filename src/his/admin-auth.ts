/**
 * Admin authentication for the endpoints that change state (key import, scanner registration, config
 * reload …): a Bearer key from `admin.apiKeys`, a separate set from the HIS keys (an HIS key is refused
 * here, and configuring one key in both sets is an error).
 *
 * Failed attempts are limited per client address: after `admin.maxFailedAttempts` failures within
 * `admin.lockoutSeconds` (default 900), that address is locked out for as long (429 with Retry-After, even
 * with the right key).
 * Every failure, every lockout and every admitted admin request (method, path, answer status) is audited.
 * With no admin keys configured the admin endpoints answer 403.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import { bearerCheck, clientAddress, keyMatcher, keyTag, type AuditSink } from './auth.ts';
import type { Logger } from '../platform/log.ts';

export interface AdminAuthOptions {
  /** config admin.apiKeys */
  apiKeys: readonly string[];
  /** config admin.maxFailedAttempts */
  maxFailedAttempts: number;
  /** config admin.lockoutSeconds: failure window and lockout length (default 900) */
  lockoutSeconds?: number;
  /** when given, an admin key that is also an HIS key is refused at start */
  hisApiKeys?: readonly string[];
  windowMs?: number;
  lockoutMs?: number;
  audit?: AuditSink;
  logger?: Logger;
  clock?: () => number;
}

interface ClientState {
  failures: number[];
  lockedUntil: number;
  lockNoted: boolean;
}

/** Per-address failure counting and lockout. */
export class Lockout {
  private readonly clients = new Map<string, ClientState>();
  constructor(
    readonly maxFailures: number,
    readonly windowMs: number,
    readonly lockoutMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** ms left of a lockout, 0 when not locked */
  lockedFor(client: string): number {
    const s = this.clients.get(client);
    if (!s) return 0;
    return Math.max(0, s.lockedUntil - this.clock());
  }

  /** Count a failure; returns the failures in the window and whether this one locked the client. */
  fail(client: string): { failures: number; locked: boolean } {
    const now = this.clock();
    let s = this.clients.get(client);
    if (!s) {
      s = { failures: [], lockedUntil: 0, lockNoted: false };
      this.clients.set(client, s);
      if (this.clients.size > 10_000) this.prune(now);
    }
    s.failures = s.failures.filter((t) => now - t < this.windowMs);
    s.failures.push(now);
    if (s.failures.length >= this.maxFailures && s.lockedUntil <= now) {
      s.lockedUntil = now + this.lockoutMs;
      s.lockNoted = false;
      return { failures: s.failures.length, locked: true };
    }
    return { failures: s.failures.length, locked: false };
  }

  /** First refused request of a lockout: true once, so the trail gets one record per lockout. */
  firstRefusal(client: string): boolean {
    const s = this.clients.get(client);
    if (!s || s.lockNoted) return false;
    s.lockNoted = true;
    return true;
  }

  succeed(client: string): void {
    this.clients.delete(client);
  }

  private prune(now: number): void {
    for (const [k, s] of this.clients) if (s.lockedUntil <= now && s.failures.every((t) => now - t >= this.windowMs)) this.clients.delete(k);
  }
}

const deny = (c: Context, status: 403 | 429, why: string) => c.json({ ret_code: '1010', ret_msg: `无权限 no permission: ${why}` }, status);

/** Middleware for admin routes: `app.use('/v1/admin/*', adminAuth({ ...config.admin, hisApiKeys: config.his.apiKeys, audit, logger }))`. */
export function adminAuth(options: AdminAuthOptions): MiddlewareHandler {
  if (options.hisApiKeys && options.apiKeys.length > 0) {
    const isHis = keyMatcher(options.hisApiKeys);
    const clash = options.apiKeys.find((k) => !k.startsWith('sm3:') && isHis(k));
    if (clash !== undefined) throw new Error('admin.apiKeys: an admin key must not also be a HIS key');
  }
  const period = (options.lockoutSeconds ?? 900) * 1000;
  const lockout = new Lockout(options.maxFailedAttempts, options.windowMs ?? period, options.lockoutMs ?? period, options.clock);
  const log = options.logger;
  const check =
    options.apiKeys.length > 0
      ? bearerCheck({
          keys: options.apiKeys,
          realm: 'ehc-edge-admin',
          onFailure(c, why, presented) {
            const client = clientAddress(c);
            const { failures, locked } = lockout.fail(client);
            log?.warn('admin authentication failed', { client, why, failures, locked });
            options.audit?.record({
              kind: 'security',
              action: 'admin.auth-failed',
              route: c.req.path,
              client,
              retCode: '1010',
              detail: { why, method: c.req.method, failures, max: lockout.maxFailures, ...(presented ? { key_tag: keyTag(presented) } : {}) },
            });
            if (locked) {
              log?.error('admin: client locked out after repeated failures', { client, lockoutMs: lockout.lockoutMs });
              options.audit?.record({ kind: 'security', action: 'admin.lockout', client, retCode: '1010', detail: { failures, lockout_ms: lockout.lockoutMs } });
            }
          },
        })
      : null;
  return async (c: Context, next: Next) => {
    const client = clientAddress(c);
    if (!check) return deny(c, 403, 'admin API disabled (no admin.apiKeys configured)');
    const left = lockout.lockedFor(client);
    if (left > 0) {
      if (lockout.firstRefusal(client)) {
        options.audit?.record({ kind: 'security', action: 'admin.locked-refused', route: c.req.path, client, retCode: '1010', detail: { retry_after_s: Math.ceil(left / 1000) } });
      }
      c.header('Retry-After', String(Math.ceil(left / 1000)));
      return deny(c, 429, `too many failed attempts from ${client}; retry in ${Math.ceil(left / 1000)} s`);
    }
    let admitted = false;
    const res = await check(c, async () => {
      admitted = true;
      lockout.succeed(client);
      await next();
    });
    if (admitted) {
      options.audit?.record({
        kind: 'admin',
        action: 'admin.request',
        route: c.req.path,
        client,
        detail: { method: c.req.method, status: c.res.status },
      });
    }
    return res;
  };
}
