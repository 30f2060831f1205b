/**
 * The live scan stream: every scan, result, error and scanner change gets a sequence number and is
 * kept in a bounded ring (config scan.streamBuffer) so a reconnecting client (`Last-Event-ID`) gets
 * what it missed. Subscribers are called synchronously, in order.
 * Ids never go back, across restarts and clock steps: they continue from a block reserved in the state
 * file (`stream.reservedUpTo` in <stateDir>/state.json, written durably before the block is used, the
 * next block reserved when half of the current one is spent), never from the clock alone. A client
 * reconnecting with an id from before a restart gets the ring and a `gap` (it missed what the ring no
 * longer holds); one with an id this hub never issued (from another appliance) gets the same.
 * Each event is serialised once (`wire`), however many subscribers write it; the stream subscribers
 * (SSE and WebSocket) are served by the hub's one fan-out (`streams`, src/scan/fanout.ts).
 */
import { StreamFanout, matches, type StreamFilter } from './fanout.ts';
import type { StreamEvent, StreamEventType } from './stream-event.ts';

export { matches, type StreamFilter };
export type { StreamEvent, StreamEventType } from './stream-event.ts';

/** One SSE message; JSON.stringify never emits a raw newline, so `data` is a single line. */
export function sseText(ev: StreamEvent): string {
  return `id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify({ id: ev.id, ...ev.data })}\n\n`;
}

/** Where the hub keeps its id reservation (the state file); `reserve` resolves once it is durable. */
export interface IdReservation {
  /** the highest id a previous run may have issued (0 on a first start) */
  reservedUpTo: number;
  reserve(upTo: number): Promise<void>;
}

/** Ids reserved per state-file write. */
export const ID_BLOCK = 100_000;

export type Subscriber = (ev: StreamEvent) => void;

export class ScanHub {
  readonly #ring: (StreamEvent | undefined)[];
  readonly #first: number;
  #next: number;
  readonly #subs = new Set<Subscriber>();
  #reservedUpTo = Infinity;
  #reservation?: IdReservation;
  #reserving = false;
  /** the stream subscribers (SSE and WebSocket): one listener of this hub, O(1) serialisation per event */
  readonly streams: StreamFanout;

  constructor(
    readonly capacity: number,
    firstId: number = Date.now(),
  ) {
    this.#ring = new Array(capacity);
    this.#first = firstId;
    this.#next = firstId;
    this.streams = new StreamFanout(this);
    this.streams.encoding('sse', (ev) => (ev.wire ??= Buffer.from(sseText(ev))));
  }

  /**
   * A hub whose ids continue after everything a previous run reserved (and after the legacy
   * clock-based ids of older versions: never below Date.now() at a first start), whatever the clock says.
   */
  static async persistent(capacity: number, reservation: IdReservation, clock: () => number = Date.now): Promise<ScanHub> {
    const first = Math.max(reservation.reservedUpTo + 1, reservation.reservedUpTo === 0 ? clock() : 0);
    await reservation.reserve(first + ID_BLOCK);
    const hub = new ScanHub(capacity, first);
    hub.#reservedUpTo = first + ID_BLOCK;
    hub.#reservation = reservation;
    return hub;
  }

  /** id of the oldest event still in the ring (or of the next one, when empty) */
  get oldestId(): number {
    return Math.max(this.#first, this.#next - this.capacity);
  }

  /** id of the newest event (firstId - 1 when none yet) */
  get lastId(): number {
    return this.#next - 1;
  }

  /** open stream subscribers (SSE and WebSocket; not the appliance's own listeners) */
  get subscribers(): number {
    return this.streams.size;
  }

  publish(type: StreamEventType, scannerId: string, station: string | undefined, data: Record<string, unknown>): StreamEvent {
    const ev: StreamEvent = { id: this.#next++, type, scannerId, station, data };
    ev.wire = Buffer.from(sseText(ev));
    this.#ring[ev.id % this.capacity] = ev;
    if (this.#reservation && !this.#reserving && this.#reservedUpTo - this.#next < ID_BLOCK / 2) this.#extend();
    for (const s of this.#subs) {
      try {
        s(ev);
      } catch {
        // a broken subscriber must not stop the others
      }
    }
    return ev;
  }

  #extend(): void {
    this.#reserving = true;
    const upTo = this.#reservedUpTo + ID_BLOCK;
    this.#reservation!.reserve(upTo).then(
      () => {
        this.#reservedUpTo = upTo;
        this.#reserving = false;
      },
      () => {
        this.#reserving = false; // tried again at the next event; half a block is left
      },
    );
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
    // an id this hub never issued: the client's place is unknown, so it gets the whole ring and a gap
    if (lastId > this.lastId) return { events: this.since(oldest - 1, filter).events, gap: true };
    const from = Math.max(lastId + 1, oldest);
    const events: StreamEvent[] = [];
    for (let id = from; id < this.#next; id++) {
      const ev = this.#ring[id % this.capacity];
      if (ev && ev.id === id && matches(ev, filter)) events.push(ev);
    }
    return { events, gap: lastId + 1 < oldest };
  }
}
