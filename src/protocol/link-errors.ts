/**
 * How the link to the home card system failed, as internal error kinds. Each kind carries its wire
 * code (mapped once, here) and a message that names what was seen — the phase, the time waited, the
 * bytes received, the OS or TLS code — never a guess presented as the cause.
 *
 *   kind               wire   seen
 *   connect-failed     8004   refused / unreachable / DNS before a connection existed
 *   connect-timeout    8004   no TCP (or TLS) connection within upstream.connectTimeoutMs
 *   tls                8004   the TLS handshake failed (alert, certificate check, protocol)
 *   read-timeout       8001   connected, request sent, no complete answer within upstream.timeoutMs
 *   reset              8002   the connection was reset or closed before the answer was complete
 *                      8004   … on a fresh TLS 1.3 connection before any answer byte (nothing was served)
 *   http-status        8002   the home side answered HTTP 5xx (its front end, not the card system)
 *   busy               3003   the home system said 3003 (资源繁忙), or HTTP 429
 *   link-open          8004   not asked at all: the circuit breaker is open (src/protocol/link-breaker.ts)
 *
 * `retryAfterMs` is set when the answer carried Retry-After (429 / 503) — replay waits at least that.
 */
import { EhcError, type ReturnCode } from '../errors.ts';

export type LinkFailureKind = 'connect-failed' | 'connect-timeout' | 'tls' | 'read-timeout' | 'reset' | 'http-status' | 'busy' | 'link-open';

export class UpstreamLinkError extends EhcError {
  readonly retryAfterMs?: number;
  constructor(
    readonly kind: LinkFailureKind,
    code: ReturnCode,
    message: string,
    options: { cause?: unknown; retryAfterMs?: number } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
  /** failures of the link itself: these feed the circuit breaker (busy and link-open do not) */
  get isLinkFailure(): boolean {
    return this.kind !== 'busy' && this.kind !== 'link-open';
  }
}

export class ConnectFailed extends UpstreamLinkError {
  constructor(message: string, cause?: unknown) {
    super('connect-failed', '8004', message, { cause });
  }
}
export class ConnectTimeout extends UpstreamLinkError {
  constructor(message: string) {
    super('connect-timeout', '8004', message);
  }
}
export class TlsFailure extends UpstreamLinkError {
  constructor(message: string, cause?: unknown) {
    super('tls', '8004', message, { cause });
  }
}
export class ReadTimeout extends UpstreamLinkError {
  constructor(message: string) {
    super('read-timeout', '8001', message);
  }
}
export class ConnectionReset extends UpstreamLinkError {
  constructor(message: string, cause?: unknown, code: '8002' | '8004' = '8002') {
    super('reset', code, message, { cause });
  }
}
export class UpstreamHttpStatus extends UpstreamLinkError {
  constructor(
    readonly status: number,
    message: string,
    retryAfterMs?: number,
  ) {
    super('http-status', '8002', message, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
}
export class UpstreamBusy extends UpstreamLinkError {
  constructor(message: string, retryAfterMs?: number) {
    super('busy', '3003', message, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
}
export class LinkOpen extends UpstreamLinkError {
  constructor(message: string) {
    super('link-open', '8004', message);
  }
}

/** Retry-After as delta-seconds or an HTTP date; undefined when absent or unreadable. Capped at 1 h. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const cap = (ms: number) => Math.max(0, Math.min(3_600_000, Math.round(ms)));
  if (/^\s*\d+\s*$/.test(v)) return cap(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : cap(at - now);
}
