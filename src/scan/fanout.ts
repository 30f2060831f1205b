/**
 * Fan-out of the live scan stream to its subscribers (SSE and WebSocket), at O(1) serialisation per
 * event however many subscribers there are:
 *
 * - The fan-out is ONE listener of the hub. A published event is appended to a pending list and a
 *   delivery round is scheduled. With more sinks than one slice (below) the round waits `coalesceMs`
 *   (default 20 ms): events published meanwhile join it, so a scan and its result (a local verification
 *   takes a few ms) usually reach a reader in one write, and there are at most 1000/coalesceMs rounds a
 *   second whatever the scan rate — that much delay on the display buys a thousand readers' CPU. With
 *   one slice of sinks or fewer (a site's few desks and kiosks) a round costs little, and it runs on the
 *   next turn of the event loop: no added delay (the scanners bench measured the 20 ms as the desks'
 *   p99 going from ~9 to ~24 ms). coalesceMs 0 = always the next turn.
 * - Each event is serialised once per encoding (`sse`, `sse-viewer`, `ws`: the hub's `wire` for SSE,
 *   the others cached per event), and the round's events are joined once per group of sinks that see
 *   the same events (same encoding and filter): a thousand unfiltered SSE readers get the same Buffer.
 * - A round writes to at most `slice` sinks per turn of the event loop, then yields (setImmediate),
 *   so a burst to a thousand readers never blocks the loop for long: a verification arriving meanwhile
 *   is answered between slices.
 * - Each sink does one write per round; what to do when its socket does not keep up (bounded queue,
 *   `gap`, drop) is the sink's business (src/his/scans-route.ts, src/his/scan-websocket.ts).
 * - The subscriber limit (config scan.maxSubscribers) counts SSE and WebSocket sinks together.
 * - One keep-alive timer for all sinks, not one per sink.
 */
import type { StreamEvent } from './stream-event.ts';

export interface StreamFilter {
  station?: string;
  scanner?: string;
}

export function matches(ev: StreamEvent, f: StreamFilter): boolean {
  if (f.station !== undefined && ev.station !== f.station) return false;
  if (f.scanner !== undefined && ev.scannerId !== f.scanner) return false;
  return true;
}

/** The events of one round as one sink sees them: each event's bytes (shared), and all joined (shared by the group). */
export class Batch {
  #joined?: Buffer;
  constructor(
    readonly parts: readonly Buffer[],
    readonly lastId: number,
  ) {}
  get count(): number {
    return this.parts.length;
  }
  /** every part in one Buffer (made once, on first use, for every sink of the group) */
  get joined(): Buffer {
    return (this.#joined ??= this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts));
  }
  #chunk?: Buffer;
  /** `joined` as one HTTP/1.1 chunk (size line, data, CRLF), also made once for the group */
  get chunk(): Buffer {
    return (this.#chunk ??= httpChunk(this.joined));
  }
}

const CRLF = Buffer.from('\r\n');
/** bytes as one chunk of a `Transfer-Encoding: chunked` body */
export function httpChunk(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, CRLF]);
}

export interface StreamSink {
  readonly filter: StreamFilter;
  /** which serialisation this sink writes: a key of the fan-out's encoders */
  readonly encoding: string;
  /** the highest event id this sink has been given; the fan-out skips events up to it and advances it */
  sentUpTo: number;
  /** one round's events for this sink (never empty) */
  write(batch: Batch): void;
  /** the keep-alive tick (a comment line, a ping) */
  keepAlive(): void;
}

export type Encoder = (ev: StreamEvent) => Buffer;

export interface FanoutOptions {
  /** sinks written per turn of the event loop (default 64) */
  slice?: number;
  /** with more sinks than `slice`: how long a round waits for more events after the first (default 20 ms; 0: next turn of the loop) */
  coalesceMs?: number;
  /** keep-alive interval (default 15 s) */
  keepAliveMs?: number;
}

type Hub = { subscribe(fn: (ev: StreamEvent) => void): () => void; readonly lastId: number };

export class StreamFanout {
  readonly #hub: Hub;
  readonly #sinks = new Set<StreamSink>();
  readonly #encoders = new Map<string, Encoder>();
  readonly #bytes = new Map<string, WeakMap<StreamEvent, Buffer>>();
  #pending: StreamEvent[] = [];
  #busy = false;
  #unsubscribe?: () => void;
  #keepAlive?: ReturnType<typeof setInterval>;
  #slice = 64;
  #coalesceMs = 20;
  #keepAliveMs = 15_000;
  /** rounds delivered and sink writes made (status, tests) */
  rounds = 0;
  writes = 0;

  constructor(hub: Hub, options: FanoutOptions = {}) {
    this.#hub = hub;
    this.configure(options);
  }

  configure(options: FanoutOptions): void {
    if (options.slice !== undefined) this.#slice = Math.max(1, options.slice);
    if (options.coalesceMs !== undefined) this.#coalesceMs = Math.max(0, options.coalesceMs);
    if (options.keepAliveMs !== undefined && options.keepAliveMs !== this.#keepAliveMs) {
      this.#keepAliveMs = options.keepAliveMs;
      if (this.#keepAlive) {
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
        this.#startKeepAlive();
      }
    }
  }

  /** Registers how `encoding` serialises one event (idempotent: the first registration stays). */
  encoding(name: string, encode: Encoder): void {
    if (!this.#encoders.has(name)) {
      this.#encoders.set(name, encode);
      this.#bytes.set(name, new WeakMap());
    }
  }

  /** The event's bytes in `encoding`, made once per event. */
  bytes(ev: StreamEvent, encoding: string): Buffer {
    const cache = this.#bytes.get(encoding);
    if (!cache) throw new Error(`stream encoding ${encoding} is not registered`);
    let b = cache.get(ev);
    if (!b) cache.set(ev, (b = this.#encoders.get(encoding)!(ev)));
    return b;
  }

  get size(): number {
    return this.#sinks.size;
  }

  /**
   * Adds a sink unless `limit` sinks are open (false: refuse the client). The sink gets every event
   * published after its `sentUpTo` (set it to hub.lastId, or to the last id it replayed from the ring).
   */
  add(sink: StreamSink, limit = Infinity): boolean {
    if (this.#sinks.size >= limit) return false;
    this.#sinks.add(sink);
    this.#unsubscribe ??= this.#hub.subscribe((ev) => this.#offer(ev));
    this.#startKeepAlive();
    return true;
  }

  remove(sink: StreamSink): void {
    if (!this.#sinks.delete(sink) || this.#sinks.size > 0) return;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  #startKeepAlive(): void {
    if (this.#keepAlive) return;
    this.#keepAlive = setInterval(() => {
      for (const s of [...this.#sinks]) {
        try {
          s.keepAlive();
        } catch {
          this.remove(s);
        }
      }
    }, this.#keepAliveMs);
    this.#keepAlive.unref?.();
  }

  #offer(ev: StreamEvent): void {
    if (this.#sinks.size === 0) return;
    this.#pending.push(ev);
    if (!this.#busy) {
      this.#busy = true;
      this.#later();
    }
  }

  #later(): void {
    if (this.#coalesceMs > 0 && this.#sinks.size > this.#slice) setTimeout(() => this.#round(), this.#coalesceMs);
    else setImmediate(() => this.#round());
  }

  #round(): void {
    const events = this.#pending;
    this.#pending = [];
    const sinks = [...this.#sinks];
    if (events.length === 0 || sinks.length === 0) return this.#roundDone();
    this.rounds++;
    const firstId = events[0]!.id;
    const groups = new Map<string, Batch | null>();
    let i = 0;
    const step = () => {
      const end = Math.min(i + this.#slice, sinks.length);
      for (; i < end; i++) {
        const s = sinks[i]!;
        if (!this.#sinks.has(s)) continue; // left during the round
        let batch: Batch | null | undefined;
        if (s.sentUpTo < firstId) {
          const key = `${s.encoding}\u0000${s.filter.station ?? '\u0001'}\u0000${s.filter.scanner ?? '\u0001'}`;
          batch = groups.get(key);
          if (batch === undefined) groups.set(key, (batch = this.#batchFor(events, s)));
        } else {
          batch = this.#batchFor(events, s); // it replayed part of this round from the ring
        }
        if (!batch) continue;
        s.sentUpTo = batch.lastId;
        this.writes++;
        try {
          s.write(batch);
        } catch {
          this.remove(s); // a broken sink must not stop the others
        }
      }
      if (i < sinks.length) setImmediate(step);
      else this.#roundDone();
    };
    step();
  }

  #roundDone(): void {
    if (this.#pending.length && this.#sinks.size) this.#later();
    else {
      this.#pending = [];
      this.#busy = false;
    }
  }

  #batchFor(events: readonly StreamEvent[], s: StreamSink): Batch | null {
    const parts: Buffer[] = [];
    let last = s.sentUpTo;
    for (const ev of events) {
      if (ev.id <= s.sentUpTo || !matches(ev, s.filter)) continue;
      parts.push(this.bytes(ev, s.encoding));
      last = ev.id;
    }
    return parts.length ? new Batch(parts, last) : null;
  }

  /** Drops every sink (the server is stopping); each sink closes its own connection. */
  clear(): void {
    this.#sinks.clear();
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#pending = [];
  }
}
