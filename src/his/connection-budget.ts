/**
 * The HIS port's connection budget (config `his.connections`), so one host — or many — cannot take
 * every file descriptor of the appliance:
 *
 * - `perAddress`: open connections per client address; one more is closed at once (TCP reset).
 * - `max`: open connections in total for ordinary requests.
 * - `reserve`: connections above `max` that only serve the probes and the operator's view
 *   (`/v1/health`, `/v1/status`, `/metrics`, `/status…`); anything else on them is answered 503 and the
 *   connection closed. Above `max + reserve` a new connection is closed at once.
 * - Timeouts (Node's http server): `headersTimeoutMs` for the request head, `requestTimeoutMs` for the
 *   whole request with its body (a slow-body sender is cut off), `keepAliveTimeoutMs` between requests
 *   on a kept-alive connection, `idleTimeoutMs` of silence on a socket (the scan stream writes a
 *   keep-alive comment every 15 s, so it stays open).
 *
 * Upstream connections (src/protocol/http-upstream.ts, an agent of at most 64 sockets) are outside
 * this budget: with the HIS port bounded at `max + reserve`, the unit's LimitNOFILE leaves them,
 * the outbox, the audit trail and the scanners their own descriptors (`descriptorsNeeded`).
 */
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  max: number;
  perAddress: number;
  reserve: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
}

export const CONNECTION_DEFAULTS: ConnectionLimits = {
  max: 1024,
  perAddress: 256,
  reserve: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
};

/** Descriptors outside the HIS port: upstream agent (64) + its probe, outbox (SQLite + WAL), audit, state, scanners, stdio … */
export const DESCRIPTORS_BESIDE_HIS = 256;

/** The file descriptors the appliance needs at most with these limits (compare with RLIMIT_NOFILE). */
export function descriptorsNeeded(limits: Pick<ConnectionLimits, 'max' | 'reserve'>): number {
  return limits.max + limits.reserve + DESCRIPTORS_BESIDE_HIS;
}

/** Paths a reserve connection may ask for: probes and the operator's view. */
export function isReservePath(path: string): boolean {
  return path === '/v1/health' || path === '/v1/status' || path === '/metrics' || path === '/status' || path.startsWith('/status/');
}

export type Admission = 'ordinary' | 'reserve' | 'refused';

export interface ConnectionCounts {
  open: number;
  reserve_open: number;
  addresses: number;
  refused_per_address: number;
  refused_total: number;
  max: number;
  per_address: number;
  reserve: number;
}

export class ConnectionBudget {
  #open = 0;
  #reserveOpen = 0;
  readonly #byAddress = new Map<string, number>();
  readonly #reserveSockets = new WeakSet<object>();
  #refusedPerAddress = 0;
  #refusedTotal = 0;

  constructor(readonly limits: ConnectionLimits) {}

  /** Decide for a new connection; an admitted one is counted until it closes. */
  admit(socket: Socket): Admission {
    const address = socket.remoteAddress ?? 'unknown';
    const mine = this.#byAddress.get(address) ?? 0;
    if (mine >= this.limits.perAddress) {
      this.#refusedPerAddress++;
      return 'refused';
    }
    let kind: Admission = 'ordinary';
    if (this.#open >= this.limits.max + this.limits.reserve) {
      this.#refusedTotal++;
      return 'refused';
    }
    if (this.#open >= this.limits.max) kind = 'reserve';
    this.#open++;
    this.#byAddress.set(address, mine + 1);
    if (kind === 'reserve') {
      this.#reserveOpen++;
      this.#reserveSockets.add(socket);
    }
    socket.once('close', () => {
      this.#open--;
      if (kind === 'reserve') this.#reserveOpen--;
      const left = (this.#byAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.#byAddress.delete(address);
      else this.#byAddress.set(address, left);
    });
    return kind;
  }

  /** Whether this socket was admitted on the reserve (probes and operator's view only). */
  isReserve(socket: object | undefined): boolean {
    return socket !== undefined && this.#reserveSockets.has(socket);
  }

  counts(): ConnectionCounts {
    return {
      open: this.#open,
      reserve_open: this.#reserveOpen,
      addresses: this.#byAddress.size,
      refused_per_address: this.#refusedPerAddress,
      refused_total: this.#refusedTotal,
      max: this.limits.max,
      per_address: this.limits.perAddress,
      reserve: this.limits.reserve,
    };
  }
}

/** The soft RLIMIT_NOFILE of this process from /proc (undefined where it cannot be read). */
export function openFileLimit(read: () => string): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(read());
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}
