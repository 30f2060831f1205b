/**
 * systemd service notifications (sd_notify protocol) spoken in-process from the main process, so the
 * unit can use `Type=notify` with `NotifyAccess=main`: READY=1, STATUS=…, WATCHDOG=1, STOPPING=1.
 *
 * Transport: Node has no AF_UNIX datagram sockets, so the datagram goes out through `unix-dgram`
 * (a small native addon, the one zigbee2mqtt uses for the same job). The npm `systemd-notify` package
 * spawns the systemd-notify CLI per message: the sender is then a short-lived child, which systemd only
 * attributes to the service with NotifyAccess=all and even then racily (see packaging/README.md).
 *
 * Watchdog: when systemd passes WATCHDOG_USEC (and WATCHDOG_PID is this process or unset), WATCHDOG=1
 * is sent every WATCHDOG_USEC/2 — but only while the event loop is healthy. The loop delay is sampled
 * with perf_hooks.monitorEventLoopDelay plus a drift check of the ping timer itself; if the loop stalled
 * for longer than `maxLagMs` (default WATCHDOG_USEC/4) since the last check, the ping is skipped and
 * the health is checked again after a quarter period. A loop that is still sick then skips again and
 * systemd's watchdog restarts the service; a transient stall only costs a warning.
 *
 * Without NOTIFY_SOCKET (not started by systemd, or a plain `npm start`) every call is a no-op.
 */
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { maskText } from './mask.ts';
import type { Logger } from './log.ts';

/** Sends one notification datagram. Errors are reported, never thrown into the caller. */
export interface NotifyTransport {
  send(message: string): void;
  close(): void;
}

export interface Watchdog {
  /** Start pinging (no-op when systemd did not ask for a watchdog). Idempotent. */
  start(): void;
  /** Stop pinging. Idempotent. */
  stop(): void;
  /** ping period in ms, or null when systemd asked for no watchdog */
  readonly intervalMs: number | null;
  /** pings skipped because the event loop lagged, since start */
  readonly skipped: number;
}

export interface Notifier {
  /** true when NOTIFY_SOCKET is set and usable */
  readonly enabled: boolean;
  /** READY=1 (with an optional STATUS=) — call once the config is valid, the store open and the HIS port listening */
  ready(status?: string): void;
  /** STATUS=<one line> — shown by `systemctl status` */
  status(text: string): void;
  /** STOPPING=1 (with an optional STATUS=) — call first thing on SIGTERM */
  stopping(status?: string): void;
  /** EXTEND_TIMEOUT_USEC=… — ask for more time during a long start or stop */
  extendTimeout(ms: number): void;
  readonly watchdog: Watchdog;
  /** stop the watchdog and close the socket; idempotent */
  close(): void;
}

export interface NotifierOptions {
  /** environment to read NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID from (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** pid to compare WATCHDOG_PID with (default process.pid) */
  pid?: number;
  /** event-loop stall (ms) beyond which a ping is skipped; default WATCHDOG_USEC/4 */
  maxLagMs?: number;
  /** `false` disables the watchdog even if systemd asks for it (config systemd.watchdog) */
  watchdog?: boolean;
  /** for tests: a transport instead of the unix datagram socket */
  transport?: NotifyTransport;
}

const require = createRequire(import.meta.url);

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error & { code?: unknown }) => void): void;
  close(): void;
  on(event: 'error' | 'congestion', listener: (arg?: unknown) => void): void;
}

/**
 * AF_UNIX SOCK_DGRAM to `socketPath` (a filesystem path; unix-dgram cannot address abstract names).
 * Like sd_notify(3), each message is one sendto() on a fresh socket that is closed right after: no
 * poll handle stays open to keep the event loop alive, and a re-executed systemd (new socket inode)
 * is reached without reconnecting.
 */
export function unixDgramTransport(socketPath: string, log: Logger): NotifyTransport {
  const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
  let lastError = '';
  const report = (text: string) => {
    if (text !== lastError) log.warn('systemd notify send failed', { error: text, socket: socketPath });
    lastError = text;
  };
  let closed = false;
  return {
    send(message) {
      if (closed) return;
      const buf = Buffer.from(message, 'utf8');
      let sock: UnixDgramSocket;
      try {
        sock = unix.createSocket('unix_dgram');
      } catch (err) {
        report(String((err as Error).message ?? err));
        return;
      }
      sock.on('error', (err) => report(String((err as Error)?.message ?? err)));
      // the callback runs synchronously inside send(); code 1 is EAGAIN ("congestion"): message dropped
      sock.send(buf, 0, buf.length, socketPath, (err) => {
        if (err) report(err.message);
        else lastError = '';
      });
      try {
        sock.close();
      } catch {
        /* closing a socket that failed to send */
      }
    },
    close() {
      closed = true;
    },
  };
}

/** One line, no control characters, masked, bounded: STATUS= must not break the newline-separated protocol. */
export function statusLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return maskText(text).replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 400);
}

/** WATCHDOG_USEC in ms if the watchdog is meant for this process, else null. */
export function watchdogIntervalFromEnv(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return usec / 1000;
}

export function createNotifier(log: Logger, options: NotifierOptions = {}): Notifier {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const socketPath = env.NOTIFY_SOCKET;
  let transport: NotifyTransport | null = options.transport ?? null;
  if (!transport && socketPath) {
    if (socketPath.startsWith('@')) {
      log.warn('NOTIFY_SOCKET is an abstract socket, which this transport cannot reach; notifications disabled', { socket: socketPath });
    } else {
      try {
        transport = unixDgramTransport(socketPath, log);
      } catch (err) {
        log.error('cannot open the systemd notify socket; notifications disabled', { error: String((err as Error).message ?? err) });
      }
    }
  }
  const enabled = transport !== null;
  const send = (lines: string[]) => {
    if (transport) transport.send(lines.join('\n') + '\n');
  };
  const periodMs = options.watchdog === false ? null : watchdogIntervalFromEnv(env, pid);
  const watchdog = createWatchdog(log, periodMs === null || !enabled ? null : periodMs, options.maxLagMs, () => send(['WATCHDOG=1']));
  let closed = false;
  let readySent = false;
  return {
    enabled,
    ready(status) {
      if (readySent) return;
      readySent = true;
      send(status === undefined ? ['READY=1'] : ['READY=1', `STATUS=${statusLine(status)}`]);
      if (enabled) log.info('systemd notified: ready');
    },
    status(text) {
      send([`STATUS=${statusLine(text)}`]);
    },
    stopping(status) {
      send(status === undefined ? ['STOPPING=1'] : ['STOPPING=1', `STATUS=${statusLine(status)}`]);
    },
    extendTimeout(ms) {
      send([`EXTEND_TIMEOUT_USEC=${Math.max(0, Math.round(ms * 1000))}`]);
    },
    watchdog,
    close() {
      if (closed) return;
      closed = true;
      watchdog.stop();
      transport?.close();
      transport = null;
    },
  };
}

/**
 * Pings every periodMs/2 while the loop is healthy. `periodMs` null → a watchdog that does nothing.
 * Exported for tests through createNotifier only.
 */
function createWatchdog(log: Logger, periodMs: number | null, maxLagOption: number | undefined, ping: () => void): Watchdog {
  const intervalMs = periodMs === null ? null : periodMs / 2;
  const maxLagMs = maxLagOption ?? (periodMs === null ? 0 : periodMs / 4);
  let timer: NodeJS.Timeout | null = null;
  let histogram: IntervalHistogram | null = null;
  let skipped = 0;
  let lastTick = 0;
  let expectedGap = 0;

  const schedule = (ms: number) => {
    lastTick = performance.now();
    expectedGap = ms;
    timer = setTimeout(tick, ms);
    // the watchdog must never keep a process alive that is otherwise done
    timer.unref();
  };
  const tick = () => {
    const drift = performance.now() - lastTick - expectedGap;
    const loopMax = histogram ? histogram.max / 1e6 : 0;
    histogram?.reset();
    const lag = Math.max(drift, loopMax);
    if (lag > maxLagMs) {
      skipped++;
      log.warn('event loop stalled: watchdog ping withheld', { lagMs: Math.round(lag), maxLagMs: Math.round(maxLagMs), skipped });
      schedule(intervalMs! / 2);
      return;
    }
    ping();
    schedule(intervalMs!);
  };
  return {
    intervalMs,
    get skipped() {
      return skipped;
    },
    start() {
      if (intervalMs === null || timer) return;
      histogram = monitorEventLoopDelay({ resolution: 10 });
      histogram.enable();
      ping();
      schedule(intervalMs);
      log.info('systemd watchdog started', { pingEveryMs: Math.round(intervalMs), maxLagMs: Math.round(maxLagMs) });
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      histogram?.disable();
      histogram = null;
    },
  };
}

/**
 * The one-line STATUS= text from the appliance's status object: card, upstream and outbox state,
 * e.g. `card soft ok; upstream up 12 ms; outbox 3 queued (backoff)`. Unknown shapes are left out.
 */
export function statusSummary(status: Record<string, unknown>): string {
  const parts: string[] = [];
  const card = status.card as { ok?: boolean; driver?: string; detail?: string } | undefined;
  if (card && typeof card === 'object') parts.push(`card ${card.driver ?? ''} ${card.ok ? 'ok' : `FAIL ${card.detail ?? ''}`}`.replace(/\s+/g, ' ').trim());
  const up = status.upstream as { reachable?: boolean; phase?: string; latencyMs?: number; lastError?: string } | undefined;
  if (up && typeof up === 'object') {
    const state = up.phase ?? (up.reachable ? 'up' : 'down');
    parts.push(`upstream ${state}${up.latencyMs !== undefined && state === 'up' ? ` ${Math.round(up.latencyMs)} ms` : ''}${state === 'down' && up.lastError ? ` (${up.lastError})` : ''}`);
  }
  const outbox = status.outbox as { depth?: number; dead?: number; full?: boolean; state?: string; oldestAgeSeconds?: number } | undefined;
  if (outbox && typeof outbox === 'object') {
    let text = `outbox ${outbox.depth ?? '?'} queued`;
    if (outbox.state) text += ` (${outbox.state})`;
    if (outbox.dead) text += `, ${outbox.dead} dead`;
    if (outbox.full) text += ', FULL';
    if (outbox.oldestAgeSeconds && outbox.depth) text += `, oldest ${Math.round(outbox.oldestAgeSeconds)} s`;
    parts.push(text);
  }
  return parts.join('; ') || 'running';
}
