/**
 * Failed-authentication throttling for every key class of the HIS port (HIS keys, admin keys, and any
 * class added later): one layer in front of the key check, `throttled(throttle, 'his', check)`.
 *
 * - Per client address, sliding window: after `maxFailures` failed attempts within `windowSeconds`
 *   the address is answered 429 (ret_code 1010, `Retry-After`) without its key being looked at, until
 *   the oldest of those failures leaves the window.
 * - Global cap: when all addresses together fail `globalMaxFailures` times within the window (many
 *   addresses guessing in parallel), any address with a failure in the window is refused the same way,
 *   so each guessing address gets one attempt per window; an error line and an audit record say so once.
 * - Noise is bounded: per address and window, one log line and one audit record at the first failure,
 *   one when the address is throttled, and the count of the previous window with the next window's
 *   first line. A guessing run of 10 000 requests writes O(1) lines per window, not 10 000.
 * A request that passes the key check is never counted; one that arrives while throttled is not counted
 * either (it was not checked), so Retry-After is honest.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { Logger } from '../platform/log.ts';
import { clientAddress, keyTag, type AuditSink } from './auth.ts';

export interface AuthThrottleOptions {
  /** failures per address within the window before it is refused (config his.authThrottle.maxFailures) */
  maxFailures: number;
  /** the sliding window (config his.authThrottle.windowSeconds) */
  windowSeconds: number;
  /** failures from all addresses within the window before every failing address is refused */
  globalMaxFailures: number;
  audit?: AuditSink;
  logger?: Logger;
  clock?: () => number;
  /** addresses tracked at most (the oldest idle ones are forgotten first) */
  maxAddresses?: number;
}

interface AddressState {
  /** times of the most recent failures, oldest first, at most maxFailures of them */
  failures: number[];
  /** failures counted in the current reporting window, and when it began */
  windowStart: number;
  windowCount: number;
  /** refused (429) requests in the current reporting window */
  windowRefused: number;
  throttleNoted: boolean;
}

export type ThrottleVerdict = { blocked: false } | { blocked: true; retryAfterSeconds: number; reason: 'address' | 'global' };

export interface ThrottleState {
  max_failures: number;
  window_seconds: number;
  global_max_failures: number;
  failures_in_window: number;
  addresses_throttled: number;
  global_tripped: boolean;
}

export class AuthThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly globalMax: number;
  readonly #clock: () => number;
  readonly #maxAddresses: number;
  readonly #byAddress = new Map<string, AddressState>();
  /** failure times of all addresses, for the global cap (a ring of at most globalMax entries) */
  readonly #global: number[] = [];
  #globalNotedAt = -Infinity;

  constructor(private readonly options: AuthThrottleOptions) {
    this.maxFailures = options.maxFailures;
    this.windowMs = options.windowSeconds * 1000;
    this.globalMax = options.globalMaxFailures;
    this.#clock = options.clock ?? Date.now;
    this.#maxAddresses = options.maxAddresses ?? 50_000;
  }

  /** Whether a request from `client` may have its key checked at all. */
  check(client: string): ThrottleVerdict {
    const s = this.#byAddress.get(client);
    if (!s) return { blocked: false };
    const now = this.#clock();
    this.#expire(s, now);
    if (s.failures.length >= this.maxFailures) return { blocked: true, retryAfterSeconds: this.#retryAfter(s.failures[0]!, now), reason: 'address' };
    if (s.failures.length > 0 && this.#globalTripped(now)) return { blocked: true, retryAfterSeconds: this.#retryAfter(s.failures.at(-1)!, now), reason: 'global' };
    return { blocked: false };
  }

  /** A refused request (429): audited and logged once per address and window. */
  refused(c: Context, client: string, verdict: Extract<ThrottleVerdict, { blocked: true }>, keyClass: string): void {
    const s = this.#byAddress.get(client);
    if (!s) return;
    this.#roll(s, client, this.#clock());
    s.windowRefused++;
    if (s.throttleNoted) return;
    s.throttleNoted = true;
    this.options.logger?.warn('authentication throttled for a client address', { client, key_class: keyClass, reason: verdict.reason, failures: s.windowCount, retry_after_s: verdict.retryAfterSeconds });
    this.options.audit?.record({ kind: 'security', action: 'auth.throttled', route: c.req.path, client, retCode: '1010', detail: { key_class: keyClass, reason: verdict.reason, failures: s.windowCount, retry_after_s: verdict.retryAfterSeconds } });
  }

  /** A failed key check (401). */
  failed(c: Context, client: string, keyClass: string, why: string, presented: string | undefined): void {
    const now = this.#clock();
    let s = this.#byAddress.get(client);
    if (!s) {
      if (this.#byAddress.size >= this.#maxAddresses) this.#forgetOldest(now);
      s = { failures: [], windowStart: now, windowCount: 0, windowRefused: 0, throttleNoted: false };
      this.#byAddress.set(client, s);
    } else {
      // most recently failing last: the oldest idle address is the first one in the map
      this.#byAddress.delete(client);
      this.#byAddress.set(client, s);
    }
    this.#expire(s, now);
    const previous = this.#roll(s, client, now);
    s.failures.push(now);
    if (s.failures.length > this.maxFailures) s.failures.shift();
    s.windowCount++;
    this.#global.push(now);
    if (this.#global.length > this.globalMax) this.#global.shift();
    if (s.windowCount === 1) {
      const detail = { key_class: keyClass, why, method: c.req.method, ...(presented ? { key_tag: keyTag(presented) } : {}), ...(previous ? { previous_window: previous } : {}) };
      this.options.logger?.warn('authentication failed', { client, path: c.req.path, ...detail });
      this.options.audit?.record({ kind: 'security', action: 'auth.failed', route: c.req.path, client, retCode: '1010', detail });
    }
    if (this.#globalTripped(now) && now - this.#globalNotedAt >= this.windowMs) {
      this.#globalNotedAt = now;
      this.options.logger?.error('authentication failures from many addresses: every failing address is limited to one attempt per window', { failures: this.#global.length, window_s: this.windowMs / 1000, addresses: this.#byAddress.size });
      this.options.audit?.record({ kind: 'security', action: 'auth.global-throttle', retCode: '1010', detail: { failures: this.#global.length, window_s: this.windowMs / 1000, addresses: this.#byAddress.size } });
    }
  }

  state(): ThrottleState {
    const now = this.#clock();
    let throttled = 0;
    let inWindow = 0;
    for (const s of this.#byAddress.values()) {
      this.#expire(s, now);
      inWindow += s.failures.length;
      if (s.failures.length >= this.maxFailures) throttled++;
    }
    return { max_failures: this.maxFailures, window_seconds: this.windowMs / 1000, global_max_failures: this.globalMax, failures_in_window: inWindow, addresses_throttled: throttled, global_tripped: this.#globalTripped(now) };
  }

  #globalTripped(now: number): boolean {
    return this.#global.length >= this.globalMax && now - this.#global[0]! < this.windowMs;
  }

  #retryAfter(since: number, now: number): number {
    return Math.max(1, Math.ceil((since + this.windowMs - now) / 1000));
  }

  #expire(s: AddressState, now: number): void {
    while (s.failures.length > 0 && now - s.failures[0]! >= this.windowMs) s.failures.shift();
  }

  /** Starts a new reporting window when the current one is over; returns the closed window's counts. */
  #roll(s: AddressState, client: string, now: number): { failures: number; refused: number } | undefined {
    if (now - s.windowStart < this.windowMs) return undefined;
    const closed = s.windowCount > 1 || s.windowRefused > 0 ? { failures: s.windowCount, refused: s.windowRefused } : undefined;
    if (closed && s.windowCount > 1) this.options.audit?.record({ kind: 'security', action: 'auth.failed.window', client, retCode: '1010', detail: { ...closed, window_s: this.windowMs / 1000 } });
    s.windowStart = now;
    s.windowCount = 0;
    s.windowRefused = 0;
    s.throttleNoted = false;
    return closed;
  }

  #forgetOldest(now: number): void {
    for (const [k, s] of this.#byAddress) {
      this.#expire(s, now);
      if (s.failures.length === 0 || this.#byAddress.size >= this.#maxAddresses) this.#byAddress.delete(k);
      if (this.#byAddress.size < this.#maxAddresses) return;
    }
  }
}

/** Why a key check failed, read from the request (for the trail; the check itself answered already). */
function failureOf(c: Context): { why: string; presented: string | undefined } {
  const header = c.req.header('Authorization');
  if (!header) return { why: 'missing', presented: undefined };
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  return m ? { why: 'invalid', presented: m[1] } : { why: 'malformed', presented: undefined };
}

/**
 * The throttle in front of one key check: refused addresses get 429 before their key is looked at;
 * an answer of 401/400 from `check` (it did not call next) counts as a failure.
 */
export function throttled(throttle: AuthThrottle, keyClass: string, check: MiddlewareHandler): MiddlewareHandler {
  return async (c: Context, next: Next) => {
    const client = clientAddress(c);
    const verdict = throttle.check(client);
    if (verdict.blocked) {
      throttle.refused(c, client, verdict, keyClass);
      c.header('Retry-After', String(verdict.retryAfterSeconds));
      return c.json({ ret_code: '1010', ret_msg: `无权限 no permission: too many failed attempts from ${client}; retry in ${verdict.retryAfterSeconds} s` }, 429);
    }
    let passed = false;
    const res = await check(c, async () => {
      passed = true;
      await next();
    });
    if (!passed) {
      const status = res instanceof Response ? res.status : c.res.status;
      if (status === 401 || status === 400) {
        const { why, presented } = failureOf(c);
        throttle.failed(c, client, keyClass, why, presented);
      }
    }
    return res;
  };
}

export const AUTH_THROTTLE_DEFAULTS = { maxFailures: 10, windowSeconds: 60, globalMaxFailures: 200 } as const;
