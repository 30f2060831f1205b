/**
 * HttpUpstream: the home card system over HTTPS with mutual TLS (TLS ≥ 1.2, only the configured CA
 * trusted), through the address the site's GM SSL VPN exposes (an OS tunnel or a local TLCP client
 * proxy — no Node TLS stack speaks TLCP, so what we can observe is whether that address answers).
 * Plain HTTP only with `upstream.insecure: true` to a loopback host (enforced by the config loader).
 *
 * Network errors are mapped to spec codes once, here:
 *   connect refused / unreachable / DNS / TLS handshake / connect timeout → 8004
 *   no complete answer within timeoutMs after connecting                 → 8001
 *   connection reset or aborted mid-transfer                             → 8002
 *   empty body → 9004, body that is not a JSON envelope → 9008, bad digest → 9003
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { EhcError, UpstreamConnectError, UpstreamConnectTimeoutError, UpstreamTimeoutError, UpstreamTlsError, UpstreamTransferError, type ReturnCode } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { Dialect } from './dialect.ts';
import { loadDialect } from './dialect-profiles.ts';
import { openResponse, sealRequest } from './envelope.ts';
import { encodeRequestBody, methodUrl } from './transport.ts';
import {
  METHOD_CROSS_DOMAIN,
  METHOD_REGISTER_TERMINAL,
  METHOD_USECARDDATE,
  METHOD_VERIFY,
  type Upstream,
  type UpstreamCallContext,
  type UpstreamHealth,
  type UpstreamBiz,
  type UpstreamIdentity,
  type UpstreamMethod,
  type UpstreamSettings,
} from './upstream.ts';

export type UpstreamConfig = UpstreamSettings;

export interface UpstreamState extends UpstreamHealth {
  /** host:port of the tunnel / proxy endpoint the appliance talks to */
  target: string;
  /** `unknown` until a probe or a call has completed */
  phase: 'unknown' | 'up' | 'down';
  lastCode?: ReturnCode;
}

export interface HttpUpstreamOptions {
  logger?: Logger;
  /** run the periodic reachability probe (default true) */
  probe?: boolean;
  /** largest response body accepted (default 1 MiB) */
  maxResponseBytes?: number;
  /** every opened answer's envelope (clock discipline reads its `timestamp`) */
  onAnswer?: (envelope: { timestamp?: string }) => void;
}

const PROBE_TLS13_GRACE_MS = 250;
const PROVINCE_METHODS = new Set<string>([METHOD_USECARDDATE, METHOD_REGISTER_TERMINAL]);
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'EHOSTDOWN', 'ENETDOWN']);
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL_)/;

function errCode(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? '';
}

/** Map a network error once. `connected`: the TCP/TLS connection had been established. */
export function mapNetworkError(err: unknown, connected: boolean, target: string): EhcError {
  if (err instanceof EhcError) return err;
  const code = errCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (CONNECT_ERRORS.has(code)) return new UpstreamConnectError(`cannot connect to the home card system at ${target}: ${code}`, { cause: err });
  if (TLS_CODE.test(code) || /alert|handshake|certificate/i.test(detail)) {
    return new UpstreamTlsError(`TLS with the home card system at ${target} failed: ${detail}`, { cause: err });
  }
  if (!connected) return new UpstreamConnectError(`cannot connect to the home card system at ${target}: ${detail}`, { cause: err });
  return new UpstreamTransferError(`connection to the home card system at ${target} broke mid-transfer: ${code || detail}`, { cause: err });
}

/** A reused keep-alive connection reset before any answer (the server had closed it while idle). */
class StaleConnection extends Error {
  constructor(override readonly cause: unknown) {
    super('stale kept-alive connection');
  }
}

export class HttpUpstream implements Upstream {
  private readonly dialect: Dialect;
  private readonly agent: http.Agent;
  private readonly tlsOptions: tls.ConnectionOptions;
  private readonly secure: boolean;
  private readonly target: string;
  private readonly probeUrl: URL;
  private readonly maxBytes: number;
  private timer?: NodeJS.Timeout;
  private probing?: Promise<void>;
  private closed = false;
  private current: UpstreamState;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly options: HttpUpstreamOptions = {},
  ) {
    this.dialect = loadDialect(config.dialect, { appKey: config.appKey });
    this.probeUrl = new URL(config.url);
    this.secure = this.probeUrl.protocol === 'https:';
    for (const u of [config.url, config.crossDomainUrl]) {
      if (new URL(u).protocol !== this.probeUrl.protocol) throw new EhcError('9001', 'upstream.url and upstream.crossDomainUrl must use the same scheme');
    }
    if (!this.secure && !config.insecure) throw new EhcError('9001', 'plain http to the home card system needs upstream.insecure: true (loopback only)');
    this.target = `${this.probeUrl.hostname}:${this.probeUrl.port || (this.secure ? 443 : 80)}`;
    this.maxBytes = options.maxResponseBytes ?? 1024 * 1024;
    this.tlsOptions = this.secure ? HttpUpstream.loadTls(config) : {};
    const agentOptions = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' as const };
    this.agent = this.secure ? new https.Agent({ ...agentOptions, ...this.tlsOptions }) : new http.Agent(agentOptions);
    this.current = { reachable: false, url: config.url, target: this.target, phase: 'unknown' };
    if (options.probe !== false) {
      void this.runProbe();
      this.timer = setInterval(() => void this.runProbe(), config.healthIntervalMs);
      this.timer.unref();
    }
  }

  /** TLS settings: mutual TLS, TLS ≥ 1.2, only the configured CA (no system roots). */
  private static loadTls(config: UpstreamConfig): tls.ConnectionOptions {
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
    const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
    return {
      ca: read(t.ca, 'ca'),
      ...(t.cert && t.key ? { cert: read(t.cert, 'cert'), key: read(t.key, 'key') } : {}),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      ...(t.servername ? { servername: t.servername } : net.isIP(host) ? {} : { servername: host }),
    };
  }

  get state(): UpstreamState {
    return { ...this.current };
  }

  private record(ok: boolean, latencyMs?: number, error?: EhcError): void {
    this.current = {
      reachable: ok,
      url: this.config.url,
      target: this.target,
      phase: ok ? 'up' : 'down',
      checkedAt: new Date().toISOString(),
      ...(latencyMs !== undefined ? { latencyMs: Math.round(latencyMs * 10) / 10 } : {}),
      ...(ok ? {} : { lastError: error?.message ?? 'unreachable', lastCode: error?.code }),
    };
  }

  async call(method: UpstreamMethod, biz: UpstreamBiz, ctx: UpstreamCallContext = {}): Promise<UpstreamIdentity> {
    if (this.closed) throw new UpstreamConnectError('upstream client is closed');
    const base = method === METHOD_CROSS_DOMAIN ? this.config.crossDomainUrl : method === METHOD_VERIFY || PROVINCE_METHODS.has(method) ? this.config.url : undefined;
    if (!base) throw new EhcError('1005', `method ${String(method)} is not one the appliance calls`);
    const url = methodUrl(base, method, this.dialect);
    if (!biz.out_verify_no || biz.out_verify_no.length > 32) throw new EhcError('9001', 'out_verify_no must be 1–32 characters');
    const envelope = sealRequest({
      method,
      appId: this.config.appId,
      termId: ctx.termId ?? this.config.termId,
      version: this.config.version,
      biz: { ...biz },
      secret: this.config.appSecret,
      dialect: this.dialect,
    });
    const started = performance.now();
    const { payload, contentType } = encodeRequestBody(envelope, this.dialect);
    let text: string;
    try {
      try {
        text = await this.post(url, payload, contentType, ctx.signal);
      } catch (err) {
        // a kept-alive connection the server closed while idle: once more on a fresh connection
        // (the request never got an answer; out_verify_no makes a repeat recognisable: 3002)
        if (!(err instanceof StaleConnection)) throw err;
        this.options.logger?.debug('kept-alive connection was stale; retrying on a new one', { target: this.target });
        text = await this.post(url, payload, contentType, ctx.signal, true);
      }
    } catch (err) {
      const e = err instanceof StaleConnection ? mapNetworkError(err.cause, true, this.target) : (err as EhcError);
      if (e.code === '8004') this.record(false, undefined, e);
      throw e;
    }
    this.record(true, performance.now() - started);
    if (text.trim() === '') throw new EhcError('9004', 'the home card system answered with an empty body');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new EhcError('9008', 'the home card system answered something that is not JSON', { cause: err });
    }
    const opened = openResponse(body, { secret: this.config.appSecret, dialect: this.dialect });
    this.options.onAnswer?.(opened.envelope as { timestamp?: string });
    return opened.biz as UpstreamIdentity;
  }

  private post(url: URL, payload: string, contentType: string, signal?: AbortSignal, retried = false): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let connected = false;
      let done = false;
      let readTimer: NodeJS.Timeout | undefined;
      const connectTimer = setTimeout(
        () => fail(new UpstreamConnectTimeoutError(`no connection to the home card system at ${this.target} within ${this.config.connectTimeoutMs} ms`)),
        this.config.connectTimeoutMs,
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
        // TLS 1.3 checks the client certificate after the client's handshake is done: a server that
        // refuses it just drops a fresh connection before answering. That is a failed connect, not a
        // broken transfer.
        if (req.reusedSocket && !retried && !answered && ['ECONNRESET', 'EPIPE'].includes(errCode(err))) return reject(new StaleConnection(err));
        if (freshTls13 && !answered && !(err instanceof EhcError) && ['ECONNRESET', 'EPIPE'].includes(errCode(err))) {
          return reject(new UpstreamTlsError(`the home card system at ${this.target} dropped the TLS 1.3 session right after the handshake (client certificate not accepted?)`, { cause: err }));
        }
        reject(mapNetworkError(err, connected, this.target));
      };
      const onConnected = () => {
        if (connected || done) return;
        connected = true;
        clearTimeout(connectTimer);
        readTimer = setTimeout(
          () => fail(new UpstreamTimeoutError(`the home card system at ${this.target} did not answer within ${this.config.timeoutMs} ms`)),
          this.config.timeoutMs,
        );
      };
      const onAbort = () => fail(connected ? new UpstreamTimeoutError('upstream call aborted by the caller') : new UpstreamConnectTimeoutError('upstream call aborted by the caller'));
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
        if (req.reusedSocket || (!this.secure && !(socket as net.Socket).connecting)) return onConnected();
        socket.once(this.secure ? 'secureConnect' : 'connect', () => {
          freshTls13 = this.secure && (socket as tls.TLSSocket).getProtocol() === 'TLSv1.3';
          onConnected();
        });
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxBytes) return fail(new EhcError('9008', `answer larger than ${this.maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('aborted', () => fail(Object.assign(new Error('response aborted mid-transfer'), { code: 'ECONNRESET' })));
        res.on('error', fail);
        res.on('end', () => {
          if (done) return;
          if (!res.complete) return fail(Object.assign(new Error('response ended before it was complete'), { code: 'ECONNRESET' }));
          finish();
          resolve(Buffer.concat(chunks).toString('utf8'));
        });
      });
      req.end(payload);
    });
  }

  /** TCP (http) or TLS handshake (https, same certificates) to the tunnel address; updates `state`. */
  private runProbe(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.probing ??= new Promise<void>((resolve) => {
      const started = performance.now();
      const host = this.probeUrl.hostname.replace(/^\[|\]$/g, '');
      const port = Number(this.probeUrl.port || (this.secure ? 443 : 80));
      const socket: net.Socket = this.secure ? tls.connect({ host, port, ...this.tlsOptions }) : net.connect({ host, port });
      let settled = false;
      let latency: number | undefined;
      let grace: NodeJS.Timeout | undefined;
      const end = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (grace) clearTimeout(grace);
        socket.destroy();
        if (err) {
          const mapped = mapNetworkError(err, false, this.target);
          this.record(false, undefined, mapped);
          this.options.logger?.warn('upstream unreachable', { target: this.target, code: mapped.code, error: mapped.message });
        } else {
          this.record(true, latency ?? performance.now() - started);
        }
        this.probing = undefined;
        resolve();
      };
      const timer = setTimeout(() => end(new UpstreamConnectTimeoutError(`no connection to ${this.target} within ${this.config.connectTimeoutMs} ms`)), this.config.connectTimeoutMs);
      socket.once(this.secure ? 'secureConnect' : 'connect', () => {
        latency = performance.now() - started;
        if (!this.secure || (socket as tls.TLSSocket).getProtocol() !== 'TLSv1.3') return end();
        // TLS 1.3: the server checks our certificate after our side of the handshake is done. It then
        // sends a session ticket (accepted) or an alert (rejected); a server without tickets says
        // nothing, so after a short grace period no news counts as accepted.
        grace = setTimeout(() => end(), PROBE_TLS13_GRACE_MS);
        socket.once('session', () => end());
        socket.once('close', () => end(new UpstreamTlsError(`the home card system at ${this.target} closed the TLS 1.3 session after the handshake (client certificate not accepted?)`)));
      });
      socket.once('error', end);
    });
    return this.probing;
  }

  /** The cached tunnel/upstream state; probes now when nothing has been observed yet. */
  async health(): Promise<UpstreamHealth> {
    if (this.current.phase === 'unknown') await this.runProbe();
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
    this.agent.destroy();
  }
}
