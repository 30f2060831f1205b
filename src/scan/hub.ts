/**
 * The live scan stream: every scan, result, error and scanner change gets a sequence number and is
 * kept in a bounded ring (config scan.streamBuffer) so a reconnecting client (`Last-Event-ID`) gets
 * what it missed. Subscribers are called synchronously, in order.
 * Ids start at the hub's creation time in ms, so they keep growing across appliance restarts: a client
 * reconnecting with an id from before a restart is told (gap) that it missed events, rather than
 * being matched against unrelated new ids.
 */
export type StreamEventType = 'scan' | 'result' | 'error' | 'scanner';

export interface StreamEvent {
  id: number;
  type: StreamEventType;
  scannerId: string;
  station?: string;
  data: Record<string, unknown>;
}

export interface StreamFilter {
  station?: string;
  scanner?: string;
}

export function matches(ev: StreamEvent, f: StreamFilter): boolean {
  if (f.station !== undefined && ev.station !== f.station) return false;
  if (f.scanner !== undefined && ev.scannerId !== f.scanner) return false;
  return true;
}

export type Subscriber = (ev: StreamEvent) => void;

export class ScanHub {
  readonly #ring: (StreamEvent | undefined)[];
  readonly #first: number;
  #next: number;
  readonly #subs = new Set<Subscriber>();

  constructor(
    readonly capacity: number,
    firstId: number = Date.now(),
  ) {
    this.#ring = new Array(capacity);
    this.#first = firstId;
    this.#next = firstId;
  }

  /** id of the oldest event still in the ring (or of the next one, when empty) */
  get oldestId(): number {
    return Math.max(this.#first, this.#next - this.capacity);
  }

  /** id of the newest event (firstId - 1 when none yet) */
  get lastId(): number {
    return this.#next - 1;
  }

  get subscribers(): number {
    return this.#subs.size;
  }

  publish(type: StreamEventType, scannerId: string, station: string | undefined, data: Record<string, unknown>): StreamEvent {
    const ev: StreamEvent = { id: this.#next++, type, scannerId, station, data };
    this.#ring[ev.id % this.capacity] = ev;
    for (const s of this.#subs) {
      try {
        s(ev);
      } catch {
        // a broken subscriber must not stop the others
      }
    }
    return ev;
  }

  subscribe(fn: Subscriber): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /**
   * Events after `lastId` still in the ring, oldest first. `gap` is true when some were already
   * overwritten (the client missed more than the ring holds).
   */
  since(lastId: number, filter: StreamFilter = {}): { events: StreamEvent[]; gap: boolean } {
    const oldest = this.oldestId;
    const from = Math.max(lastId + 1, oldest);
    const events: StreamEvent[] = [];
    for (let id = from; id < this.#next; id++) {
      const ev = this.#ring[id % this.capacity];
      if (ev && ev.id === id && matches(ev, filter)) events.push(ev);
    }
    return { events, gap: lastId + 1 < oldest };
  }
}
