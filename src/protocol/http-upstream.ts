/**
 * HttpUpstream: the home card system over HTTPS with mutual TLS (TLS ≥ 1.2, only the configured CA
 * trusted), through the address the site's GM SSL VPN exposes (an OS tunnel or a local TLCP client
 * proxy — no Node TLS stack speaks TLCP, so what we can observe is whether that address answers).
 * Plain HTTP only with `upstream.insecure: true` to a loopback host (enforced by the config loader).
 *
 * Network failures become the error kinds of ./link-errors.ts (each with its wire code); answers:
 * empty body → 9004, body that is not a JSON envelope → 9008, bad digest → 9003.
 *
 * The link view (./link-breaker.ts) lives here, so verification, replay and status see one state:
 * calls and the health probe feed the breaker; while it is open calls fail at once (8004) instead of
 * waiting for a tunnel that swallows packets. The probe is a real protocol round trip: a verify
 * request with an empty ehealth_code, which the home system answers 9001 (参数错误) — sealed, so
 * its digest proves the path, the app secret and the dialect end to end, and no transaction is
 * created upstream (out_verify_no of probes start with `PROBE`).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { EhcError, UpstreamConnectError, UpstreamConnectTimeoutError, UpstreamTimeoutError, UpstreamTlsError, UpstreamTransferError, type ReturnCode } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import { formatCst } from '../platform/time.ts';
import type { Dialect } from './dialect.ts';
import { loadDialect } from './dialect-profiles.ts';
import { openResponse, sealRequest } from './envelope.ts';
import { encodeRequestBody, methodUrl, type EncodedBody } from './transport.ts';
import { LinkBreaker, type BreakerSnapshot, type BreakerState } from './link-breaker.ts';
import {
  ConnectFailed,
  ConnectTimeout,
  ConnectionReset,
  LinkOpen,
  ReadTimeout,
  TlsFailure,
  UpstreamBusy,
  UpstreamHttpStatus,
  ProbeAnswerFailure,
  isLinkError,
  isLinkFailure,
  parseRetryAfter,
  type UpstreamLinkError,
} from './link-errors.ts';
import { newOutVerifyNo, outVerifyTime } from './ids.ts';
import {
  METHOD_CROSS_DOMAIN,
  METHOD_REGISTER_TERMINAL,
  METHOD_USECARDDATE,
  METHOD_VERIFY,
  type LinkView,
  type Upstream,
  type UpstreamCallContext,
  type UpstreamHealth,
  type UpstreamBiz,
  type UpstreamIdentity,
  type UpstreamMethod,
  type UpstreamSettings,
} from './upstream.ts';

export type UpstreamConfig = UpstreamSettings;

/** Life of the client certificate or the pinned CA. */
export interface CertLife {
  which: 'client' | 'ca';
  file: string;
  subject: string;
  notAfter: string; // ISO
  daysLeft: number;
  status: 'ok' | 'expiring' | 'expired';
}

export interface UpstreamState extends UpstreamHealth {
  /** host:port of the tunnel / proxy endpoint the appliance talks to */
  target: string;
  /** `unknown` until a probe or a call has completed */
  phase: 'unknown' | 'up' | 'down';
  lastCode?: ReturnCode;
  /** the circuit breaker: what verification and replay act on */
  link: BreakerSnapshot;
  certificates?: CertLife[];
  /** warnings people should act on (certificate expiry) */
  warnings?: string[];
}

export interface HttpUpstreamOptions {
  logger?: Logger;
  /** run the periodic health probe (default true); without it a call is the breaker's half-open trial */
  probe?: boolean;
  /** largest response body accepted (default 1 MiB) */
  maxResponseBytes?: number;
  now?: () => number;
  /** every opened answer's envelope (clock discipline reads its `timestamp`) */
  onAnswer?: (envelope: { timestamp?: string }) => void;
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'EHOSTDOWN', 'ENETDOWN']);
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL_)/;
const PROVINCE_METHODS = new Set<string>([METHOD_USECARDDATE, METHOD_REGISTER_TERMINAL]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const DAY_MS = 86_400_000;

function errCode(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? '';
}

/**
 * Map a network error once. `connected`: the TCP/TLS connection had been established; `answerBytes`:
 * bytes of the answer received so far.
 */
export function mapNetworkError(err: unknown, connected: boolean, target: string, answerBytes = 0): EhcError {
  if (err instanceof EhcError) return err;
  const code = errCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (CONNECT_ERRORS.has(code)) return new ConnectFailed(`cannot connect to the home card system at ${target}: ${code}`, err);
  if (TLS_CODE.test(code) || /alert|handshake|certificate/i.test(detail)) {
    return new TlsFailure(`TLS with the home card system at ${target} failed: ${detail}${code && !detail.includes(code) ? ` (${code})` : ''}`, err);
  }
  if (!connected) return new ConnectFailed(`cannot connect to the home card system at ${target}: ${code || detail}`, err);
  const when = answerBytes > 0 ? `after ${answerBytes} bytes of the answer` : 'after the request was sent, before any byte of the answer';
  return new ConnectionReset(`the connection to the home card system at ${target} was closed ${when} (${code || detail})`, err);
}

/** A reused keep-alive connection reset before any answer (the server had closed it while idle). */
class StaleConnection extends Error {
  constructor(override readonly cause: unknown) {
    super('stale kept-alive connection');
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export class HttpUpstream implements Upstream {
  private readonly dialect: Dialect;
  private readonly agent: http.Agent;
  private readonly tlsOptions: tls.ConnectionOptions;
  private readonly secure: boolean;
  private readonly target: string;
  private readonly probeUrl: URL;
  private readonly maxBytes: number;
  private readonly breaker: LinkBreaker;
  private readonly probing_: boolean;
  private readonly now: () => number;
  private readonly certs: Array<Omit<CertLife, 'daysLeft' | 'status'>>;
  private readonly certWarnedOn = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private openTimer?: NodeJS.Timeout;
  private probing?: Promise<void>;
  private closed = false;
  /** calls waiting for an answer: given up at once when the breaker opens (see call()) */
  private readonly waiting = new Set<{ ac: AbortController; started: number }>();
  private current: Omit<UpstreamState, 'link'>;
  readonly link: LinkView;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly options: HttpUpstreamOptions = {},
  ) {
    this.dialect = loadDialect(config.dialect, { appKey: config.appKey });
    this.now = options.now ?? Date.now;
    this.probeUrl = new URL(config.url);
    this.secure = this.probeUrl.protocol === 'https:';
    for (const u of [config.url, config.crossDomainUrl]) {
      if (new URL(u).protocol !== this.probeUrl.protocol) throw new EhcError('9001', 'upstream.url and upstream.crossDomainUrl must use the same scheme');
    }
    if (!this.secure && !config.insecure) throw new EhcError('9001', 'plain http to the home card system needs upstream.insecure: true (loopback only)');
    this.target = `${this.probeUrl.hostname}:${this.probeUrl.port || (this.secure ? 443 : 80)}`;
    this.maxBytes = options.maxResponseBytes ?? 1024 * 1024;
    const loaded = this.secure ? HttpUpstream.loadTls(config) : { options: {}, certs: [] };
    this.tlsOptions = loaded.options;
    this.certs = loaded.certs;
    const agentOptions = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' as const };
    this.agent = this.secure ? new https.Agent({ ...agentOptions, ...this.tlsOptions }) : new http.Agent(agentOptions);
    this.current = { reachable: false, url: config.url, target: this.target, phase: 'unknown' };
    this.breaker = new LinkBreaker({ failures: config.breakerFailures ?? 3, retryMs: config.breakerRetryMs ?? 1000 }, this.now);
    this.probing_ = options.probe !== false;
    const breaker = this.breaker;
    const selfProbing = this.probing_;
    this.link = {
      get linkState() {
        return breaker.state;
      },
      selfProbing,
      onLinkChange: (listener) => {
        breaker.on('change', listener);
        return () => void breaker.off('change', listener);
      },
    };
    breaker.on('change', (state: BreakerState, from: BreakerState) => this.onBreakerChange(state, from));
    this.checkCertificates();
    if (this.probing_) {
      void this.runProbe();
      this.timer = setInterval(() => {
        if (this.breaker.state === 'closed') void this.runProbe();
      }, config.healthIntervalMs);
      this.timer.unref();
    }
  }

  /** TLS settings: mutual TLS, TLS ≥ 1.2, only the configured CA (no system roots). */
  private static loadTls(config: UpstreamConfig): { options: tls.ConnectionOptions; certs: Array<Omit<CertLife, 'daysLeft' | 'status'>> } {
    const t = config.tls ?? {};
    if (!t.ca) throw new EhcError('9001', 'upstream.tls.ca is required for https: only the configured CA is trusted (CA pinning)');
    if (!!t.cert !== !!t.key) throw new EhcError('9001', 'upstream.tls.cert and upstream.tls.key go together (mutual TLS)');
    const read = (file: string, what: string) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new EhcError('9001', `cannot read upstream.tls.${what} ${file}: ${(err as Error).message}`, { cause: err });
      }
    };
    const life = (which: CertLife['which'], file: string, pem: Buffer) => {
      try {
        const x = new X509Certificate(pem); // the first certificate of the file
        return { which, file, subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() };
      } catch (err) {
        throw new EhcError('9001', `upstream.tls.${which === 'ca' ? 'ca' : 'cert'} ${file} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
      }
    };
    const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
    const ca = read(t.ca, 'ca');
    const certs = [life('ca', t.ca, ca)];
    const pair = t.cert && t.key ? { cert: read(t.cert, 'cert'), key: read(t.key, 'key') } : undefined;
    if (pair && t.cert) certs.unshift(life('client', t.cert, pair.cert));
    return {
      options: {
        ca,
        ...(pair ?? {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        ...(t.servername ? { servername: t.servername } : net.isIP(host) ? {} : { servername: host }),
      },
      certs,
    };
  }

  /** Certificate lives now; logs a warning once a day per certificate that is expiring or expired. */
  certificates(): CertLife[] {
    const now = this.now();
    const warnDays = this.config.certWarnDays ?? 30;
    return this.certs.map((c) => {
      const daysLeft = Math.floor((Date.parse(c.notAfter) - now) / DAY_MS);
      const status: CertLife['status'] = Date.parse(c.notAfter) <= now ? 'expired' : daysLeft < warnDays ? 'expiring' : 'ok';
      return { ...c, daysLeft, status };
    });
  }

  private certWarnings(lives: CertLife[]): string[] {
    const what = (c: CertLife) => (c.which === 'client' ? `client certificate ${c.file}` : `pinned CA ${c.file}`);
    return lives
      .filter((c) => c.status !== 'ok')
      .map((c) =>
        c.status === 'expired'
          ? `the ${what(c)} (${c.subject}) expired on ${formatCst(new Date(c.notAfter))} CST`
          : `the ${what(c)} (${c.subject}) expires on ${formatCst(new Date(c.notAfter))} CST, in ${c.daysLeft} days`,
      );
  }

  private checkCertificates(): CertLife[] {
    const lives = this.certificates();
    const today = new Date(this.now()).toISOString().slice(0, 10);
    for (const c of lives) {
      if (c.status === 'ok' || this.certWarnedOn.get(c.file) === today) continue;
      this.certWarnedOn.set(c.file, today);
      const [message] = this.certWarnings([c]);
      const fields = { which: c.which, file: c.file, notAfter: c.notAfter, daysLeft: c.daysLeft };
      if (c.status === 'expired') this.options.logger?.error(message!, fields);
      else this.options.logger?.warn(message!, fields);
    }
    return lives;
  }

  get state(): UpstreamState {
    const lives = this.certificates();
    const warnings = this.certWarnings(lives);
    return {
      ...this.current,
      // the desks' view: reachable only while the breaker lets calls go out
      reachable: this.current.reachable && this.breaker.state === 'closed',
      link: this.breaker.snapshot(),
      ...(lives.length ? { certificates: lives } : {}),
      ...(warnings.length ? { warnings } : {}),
    };
  }

  private record(ok: boolean, latencyMs?: number, error?: EhcError): void {
    this.current = {
      reachable: ok,
      url: this.config.url,
      target: this.target,
      phase: ok ? 'up' : 'down',
      checkedAt: new Date(this.now()).toISOString(),
      ...(latencyMs !== undefined ? { latencyMs: Math.round(latencyMs * 10) / 10 } : {}),
      ...(ok ? {} : { lastError: error?.message ?? 'unreachable', lastCode: error?.code }),
    };
  }

  private onBreakerChange(state: BreakerState, from: BreakerState): void {
    const snap = this.breaker.snapshot();
    if (state === 'open' && from === 'closed') {
      this.options.logger?.warn('link to the home card system is open: verifications stop waiting for it', { target: this.target, after: snap.lastFailure?.message });
    } else if (state === 'closed') {
      this.options.logger?.info('link to the home card system is closed again: calls go out', { target: this.target });
    }
    if (state === 'open') {
      this.scheduleTrial();
      this.giveUpWaiting();
    }
  }

  /**
   * The breaker opened while calls were still waiting (a black hole: their own read timeout is
   * seconds away): they stop waiting now, as if their timeout had come — a verification falls back
   * to the card or answers 8004 instead of waiting on a link known to be down. Their requests may
   * have reached the home system: a usage record or deferred request keeps the same out_verify_no,
   * so its replay is answered 3002, never a second transaction.
   */
  private giveUpWaiting(): void {
    const snap = this.breaker.snapshot();
    for (const w of this.waiting) {
      const waited = Math.round(performance.now() - w.started);
      w.ac.abort(
        new LinkOpen(
          `gave up after ${waited} ms without an answer: the link to the home card system at ${this.target} opened meanwhile` + (snap.lastFailure ? ` after: ${snap.lastFailure.message}` : ''),
        ),
      );
    }
    this.waiting.clear();
  }

  /** while the breaker is open: the next probe retryMs from now (one timer, whoever asks) */
  private scheduleTrial(): void {
    if (!this.probing_ || this.closed || this.breaker.state === 'closed') return;
    clearTimeout(this.openTimer);
    this.openTimer = setTimeout(() => void this.runProbe(), this.breaker.rules.retryMs);
    this.openTimer.unref();
  }

  private shortCircuit(): LinkOpen {
    const snap = this.breaker.snapshot();
    const since = formatCst(new Date(snap.since));
    return new LinkOpen(
      `not sent: the link to the home card system at ${this.target} is ${snap.state} since ${since} CST` + (snap.lastFailure ? ` after: ${snap.lastFailure.message}` : ''),
    );
  }

  async call(method: UpstreamMethod, biz: UpstreamBiz, ctx: UpstreamCallContext = {}): Promise<UpstreamIdentity> {
    if (this.closed) throw new UpstreamConnectError('upstream client is closed');
    const base = method === METHOD_CROSS_DOMAIN ? this.config.crossDomainUrl : method === METHOD_VERIFY || PROVINCE_METHODS.has(method) ? this.config.url : undefined;
    if (!base) throw new EhcError('1005', `method ${String(method)} is not one the appliance calls`);
    const url = methodUrl(base, method, this.dialect);
    if (!biz.out_verify_no || biz.out_verify_no.length > 32) throw new EhcError('9001', 'out_verify_no must be 1–32 characters');
    if (!this.breaker.allow(!this.probing_)) throw this.shortCircuit();
    const payload = this.seal(method, biz, ctx.termId);
    const started = performance.now();
    const waiting = { ac: new AbortController(), started };
    this.waiting.add(waiting);
    // a call that has waited a whole probe's time without an answer: ask the probe now, so a black
    // hole opens the breaker after ~2 × probeTimeoutMs instead of after this call's read timeout
    const suspect = this.probing_ ? setTimeout(() => this.breaker.state === 'closed' && void this.runProbe(), this.config.probeTimeoutMs ?? 1000) : undefined;
    let answer: Answer & { signed?: boolean };
    try {
      answer = await this.postOnce(url, payload, ctx.signal ? AbortSignal.any([ctx.signal, waiting.ac.signal]) : waiting.ac.signal);
    } catch (err) {
      const e = err as EhcError;
      this.linkFailed(e, 'call');
      throw e;
    } finally {
      clearTimeout(suspect);
      this.waiting.delete(waiting);
    }
    let identity: UpstreamIdentity;
    try {
      identity = this.open(answer).biz as UpstreamIdentity;
    } catch (err) {
      const e = err as EhcError;
      if (isLinkError(e)) this.linkFailed(e, 'call');
      else if (answer.signed) this.linkAnswered(performance.now() - started); // the home system answered (a business code)
      throw e;
    }
    this.linkAnswered(performance.now() - started);
    return identity;
  }

  private seal(method: UpstreamMethod, biz: UpstreamBiz, termId?: string): EncodedBody {
    const envelope = sealRequest({
      method,
      appId: this.config.appId,
      termId: termId ?? this.config.termId,
      version: this.config.version,
      biz: { ...biz },
      secret: this.config.appSecret,
      dialect: this.dialect,
    });
    return encodeRequestBody(envelope, this.dialect);
  }

  private linkAnswered(latencyMs: number): void {
    this.record(true, latencyMs);
    this.breaker.succeeded();
  }

  private linkFailed(e: EhcError, by: 'call' | 'probe'): void {
    if (!isLinkFailure(e)) return;
    this.record(false, undefined, e);
    if (by === 'probe') return this.breaker.probeFailed(e);
    this.breaker.callFailed(e);
    // one failed call: ask the probe now rather than letting the next desks find out the slow way
    if (this.probing_ && this.breaker.state === 'closed') void this.runProbe();
  }

  /**
   * HTTP status and envelope of an answer. 5xx → UpstreamHttpStatus (Retry-After kept), 429 →
   * UpstreamBusy; the body must be a sealed envelope (digest checked), 3003 in it → UpstreamBusy.
   */
  private open(answer: Answer & { signed?: boolean }): ReturnType<typeof openResponse> {
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], this.now());
    const head = answer.text.slice(0, 60).replace(/\s+/g, ' ');
    if (answer.status === 429) throw new UpstreamBusy(`the home card system at ${this.target} answered HTTP 429${retryAfterMs !== undefined ? `, Retry-After ${retryAfterMs} ms` : ''}`, retryAfterMs);
    if (answer.status >= 500) {
      throw new UpstreamHttpStatus(answer.status, `the home card system at ${this.target} answered HTTP ${answer.status}${retryAfterMs !== undefined ? `, Retry-After ${retryAfterMs} ms` : ''}${head ? `: ${head}` : ''}`, retryAfterMs);
    }
    if (answer.text.trim() === '') throw new EhcError('9004', `the home card system answered HTTP ${answer.status} with an empty body`);
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch (err) {
      throw new EhcError('9008', `the home card system answered HTTP ${answer.status} with something that is not JSON: ${head}`, { cause: err });
    }
    try {
      const opened = openResponse(body, { secret: this.config.appSecret, dialect: this.dialect });
      answer.signed = true;
      this.options.onAnswer?.(opened.envelope as { timestamp?: string });
      return opened;
    } catch (err) {
      const e = err as EhcError;
      const b = body as { digest?: unknown };
      answer.signed = e instanceof EhcError && e.code !== '9003' && e.code !== '9008' && typeof b?.digest === 'string' && b.digest !== '';
      if (e instanceof EhcError && e.code === '3003') throw new UpstreamBusy(`${e.message} (at ${this.target})`, retryAfterMs);
      throw e;
    }
  }

  private async postOnce(url: URL, payload: EncodedBody, signal?: AbortSignal): Promise<Answer> {
    try {
      return await this.post(url, payload, signal);
    } catch (err) {
      // a kept-alive connection the server closed while idle: once more on a fresh connection
      // (the request never got an answer; out_verify_no makes a repeat recognisable: 3002)
      if (!(err instanceof StaleConnection)) throw err;
      this.options.logger?.debug('kept-alive connection was stale; retrying on a new one', { target: this.target });
      try {
        return await this.post(url, payload, signal, true);
      } catch (again) {
        throw again instanceof StaleConnection ? mapNetworkError(again.cause, true, this.target) : again;
      }
    }
  }

  private post(url: URL, body: EncodedBody, signal?: AbortSignal, retried = false): Promise<Answer> {
    const { payload, contentType } = body;
    return new Promise<Answer>((resolve, reject) => {
      let tcpConnected = false;
      let connected = false;
      let done = false;
      let answerBytes = 0;
      let bytesBefore = 0;
      let expected: number | undefined;
      let readTimer: NodeJS.Timeout | undefined;
      const readMs = this.config.timeoutMs;
      const connectMs = this.config.connectTimeoutMs;
      const connectTimer = setTimeout(
        () =>
          fail(
            tcpConnected
              ? new ConnectTimeout(`TCP connected to the home card system at ${this.target}, but the TLS handshake did not complete within ${connectMs} ms`)
              : new ConnectTimeout(`no connection to the home card system at ${this.target} within ${connectMs} ms`),
          ),
        connectMs,
      );
      const finish = () => {
        done = true;
        clearTimeout(connectTimer);
        if (readTimer) clearTimeout(readTimer);
        signal?.removeEventListener('abort', onAbort);
      };
      let freshTls13 = false;
      let answered = false;
      const fail = (err: unknown) => {
        if (done) return;
        finish();
        req.destroy();
        if (req.reusedSocket && !retried && !answered && RESET_CODES.has(errCode(err))) return reject(new StaleConnection(err));
        // TLS 1.3: the server checks the client certificate after the client's side of the handshake is
        // done, so a refusal can arrive as a plain close of a fresh connection. Say what was seen.
        if (freshTls13 && !answered && !(err instanceof EhcError) && RESET_CODES.has(errCode(err))) {
          return reject(
            new TlsFailure(
              `the home card system at ${this.target} closed a fresh TLS 1.3 connection right after the handshake, before any answer (${errCode(err)}); no TLS alert was received`,
              err,
            ),
          );
        }
        reject(mapNetworkError(err, connected, this.target, answerBytes));
      };
      const onConnected = () => {
        if (connected || done) return;
        connected = true;
        clearTimeout(connectTimer);
        readTimer = setTimeout(() => {
          // bytes of the answer at the socket (headers included), not only the body the parser gave us
          const seen = Math.max(answerBytes, (req.socket?.bytesRead ?? 0) - bytesBefore);
          fail(
            new ReadTimeout(
              seen === 0
                  ? `connected to the home card system at ${this.target} and sent the request; no answer within ${readMs} ms`
                : `the answer of the home card system at ${this.target} was incomplete after ${readMs} ms: ${seen} bytes arrived${expected !== undefined ? ` (body: ${answerBytes} of ${expected})` : ''}`,
            ),
          );
        }, readMs);
      };
      const onAbort = () => {
        const reason: unknown = signal?.reason;
        if (reason instanceof EhcError) return fail(reason);
        fail(connected ? new ReadTimeout(`upstream call to ${this.target} aborted by the caller after connecting`) : new ConnectTimeout(`upstream call to ${this.target} aborted by the caller before a connection existed`));
      };
      const mod = this.secure ? https : http;
      const req = mod.request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': contentType,
          'content-length': Buffer.byteLength(payload),
          accept: 'application/json',
        },
      });
      req.on('error', fail);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('socket', (socket) => {
        bytesBefore = socket.bytesRead;
        if (req.reusedSocket || (!this.secure && !(socket as net.Socket).connecting)) return onConnected();
        socket.once('connect', () => {
          tcpConnected = true;
        });
        socket.once(this.secure ? 'secureConnect' : 'connect', () => {
          freshTls13 = this.secure && (socket as tls.TLSSocket).getProtocol() === 'TLSv1.3';
          onConnected();
        });
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        const len = Number(res.headers['content-length']);
        if (Number.isFinite(len)) expected = len;
        res.on('data', (chunk: Buffer) => {
          answerBytes += chunk.length;
          if (answerBytes > this.maxBytes) return fail(new EhcError('9008', `answer larger than ${this.maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('aborted', () => fail(Object.assign(new Error('response aborted mid-transfer'), { code: 'ECONNRESET' })));
        res.on('error', fail);
        res.on('end', () => {
          if (done) return;
          if (!res.complete) return fail(Object.assign(new Error('response ended before it was complete'), { code: 'ECONNRESET' }));
          finish();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(payload);
    });
  }

  /**
   * The health probe: a verify request with an empty ehealth_code, answered 9001 by the home system.
   * Any answer whose digest checks is the link working; no answer, a broken answer, an unsigned or
   * untrusted one, or an expired certificate is a failed probe. Updates `state` and the breaker.
   */
  private runProbe(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.probing ??= (async () => {
      await null; // never settle synchronously: `probing` must be set before the finally below clears it
      this.breaker.probing();
      const started = performance.now();
      try {
        const expired = this.checkCertificates().find((c) => c.status === 'expired');
        if (expired) throw new TlsFailure(`${this.certWarnings([expired])[0]}: the home card system will refuse it`);
        const now = new Date(this.now());
        const biz: UpstreamBiz = {
          ehealth_code: '',
          treatment_code: '',
          operator_id: 'ehc-edge-probe',
          operator_name: 'ehc-edge-probe',
          out_verify_no: `PROBE${newOutVerifyNo(now).slice(5)}`,
          out_verify_time: outVerifyTime(now),
        };
        const timeoutMs = this.config.probeTimeoutMs ?? 1000;
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(new ReadTimeout(`health probe: the home card system at ${this.target} gave no complete answer within ${timeoutMs} ms`)), timeoutMs);
        let answer: Answer;
        try {
          answer = await this.postOnce(methodUrl(this.config.url, METHOD_VERIFY, this.dialect), this.seal(METHOD_VERIFY, biz), ac.signal);
        } finally {
          clearTimeout(timer);
        }
        const a: Answer & { signed?: boolean } = answer;
        try {
          this.open(a);
        } catch (err) {
          if (!a.signed) {
            const e = err as EhcError;
            throw isLinkError(e) ? e : new ProbeAnswerFailure(`health probe: ${e.message}`, { cause: e });
          }
        }
        this.linkAnswered(performance.now() - started);
      } catch (err) {
        const e = isLinkError(err) ? err : mapNetworkError(err, false, this.target);
        const asLink: UpstreamLinkError = isLinkError(e) ? e : new ProbeAnswerFailure(e.message, { cause: e });
        this.linkFailed(asLink, 'probe');
        this.options.logger?.warn('upstream probe failed', { target: this.target, code: asLink.code, kind: asLink.linkKind, error: asLink.message });
      } finally {
        this.probing = undefined;
        // a probe that began before the breaker opened may end after the open-state timer fired
        if (this.breaker.state !== 'closed') this.scheduleTrial();
      }
    })();
    return this.probing;
  }

  /** The cached link state; probes now when nothing has been observed yet. */
  async health(): Promise<UpstreamState> {
    if (this.current.phase === 'unknown' && this.probing_) await this.runProbe();
    return this.state;
  }

  /** Probe now and return the fresh state. */
  async probe(): Promise<UpstreamState> {
    await this.runProbe();
    return this.state;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.openTimer);
    this.agent.destroy();
  }
}
