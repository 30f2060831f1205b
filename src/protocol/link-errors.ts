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
 *   (tls)              8004   … a fresh TLS 1.3 connection closed before any answer byte, no alert
 *   http-status        8002   the home side answered HTTP 5xx (its front end, not the card system)
 *   busy               3003   the home system said 3003 (资源繁忙), or HTTP 429
 *   link-open          8004   not asked at all: the circuit breaker is open (src/protocol/link-breaker.ts)
 *
 * The classes extend the kinds of src/errors.ts (HTTP status and replay decisions switch on those);
 * `linkKind` says which of the table above it was. `retryAfterMs` is set when the answer carried Retry-After (429 / 503) — replay waits at least that.
 */
import {
  EhcError,
  UpstreamAnswerError,
  UpstreamConnectError,
  UpstreamConnectTimeoutError,
  UpstreamTimeoutError,
  UpstreamTlsError,
  UpstreamTransferError,
  UpstreamUnreachableError,
} from '../errors.ts';

export type LinkFailureKind = 'connect-failed' | 'connect-timeout' | 'tls' | 'read-timeout' | 'reset' | 'http-status' | 'busy' | 'link-open';

/** What the link layer adds to the error classes of src/errors.ts: which failure it was, and Retry-After. */
export interface LinkFailure {
  readonly linkKind: LinkFailureKind;
  readonly retryAfterMs?: number;
}
export type UpstreamLinkError = EhcError & LinkFailure;

export function isLinkError(e: unknown): e is UpstreamLinkError {
  return e instanceof EhcError && typeof (e as Partial<LinkFailure>).linkKind === 'string';
}
/** failures of the link itself: these feed the circuit breaker (busy and link-open do not) */
export function isLinkFailure(e: unknown): e is UpstreamLinkError {
  return isLinkError(e) && e.linkKind !== 'busy' && e.linkKind !== 'link-open';
}

export class ConnectFailed extends UpstreamConnectError implements LinkFailure {
  readonly linkKind = 'connect-failed' as const;
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}
export class ConnectTimeout extends UpstreamConnectTimeoutError implements LinkFailure {
  readonly linkKind = 'connect-timeout' as const;
}
export class TlsFailure extends UpstreamTlsError implements LinkFailure {
  readonly linkKind = 'tls' as const;
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}
export class ReadTimeout extends UpstreamTimeoutError implements LinkFailure {
  readonly linkKind = 'read-timeout' as const;
}
/** closed or reset before the answer was complete (8002) */
export class ConnectionReset extends UpstreamTransferError implements LinkFailure {
  override readonly name: string = 'ConnectionReset';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_RESET';
  readonly linkKind = 'reset' as const;
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}
export class UpstreamHttpStatus extends UpstreamTransferError implements LinkFailure {
  override readonly name: string = 'UpstreamHttpStatus';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_HTTP_STATUS';
  readonly linkKind = 'http-status' as const;
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
/** the home system is busy: its own 3003, or HTTP 429 (it answered; the link works) */
export class UpstreamBusy extends UpstreamAnswerError implements LinkFailure {
  override readonly name: string = 'UpstreamBusy';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_BUSY';
  readonly linkKind = 'busy' as const;
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super('3003', message);
  }
}
/** not sent: the circuit breaker is open (8004 at once) */
export class LinkOpen extends UpstreamUnreachableError implements LinkFailure {
  override readonly name: string = 'LinkOpen';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_LINK_OPEN';
  readonly linkKind = 'link-open' as const;
}
/** the probe got an answer that is not a working link (unsigned, untrusted digest, not an envelope) */
export class ProbeAnswerFailure extends UpstreamUnreachableError implements LinkFailure {
  override readonly name: string = 'ProbeAnswerFailure';
  override readonly kind: string = 'EHC_ERR_UPSTREAM_PROBE_ANSWER';
  readonly linkKind = 'http-status' as const;
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
