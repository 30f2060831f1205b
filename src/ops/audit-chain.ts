/**
 * The audit chain: queued events get their `seq`, `prev` and MAC strictly one after another in arrival
 * order (the card call is async, and each MAC covers the previous one), then go to the group-commit
 * writer in that order. A rollback of the writer (a failed write) moves its epoch on while a MAC may be on
 * the card: that record is chained again on the rewound chain.
 */
import type { KeyIndex } from '../crypto/card.ts';
import { GENESIS, MAC_DOMAIN_BYTES, bodyText, macInput, type AuditEvent, type AuditMacCard } from './audit-record.ts';
import type { ChainedRecord, DurablePoint, GroupCommitWriter } from './audit-group-commit.ts';

/** An event waiting for its place in the chain. */
export interface QueuedEvent {
  event: AuditEvent;
  /** recovery records explaining a gap: this record takes seq skipTo + 1 */
  skipTo?: number;
  /** called with the stored line once it is durable; record() passes none (nobody reads it back) */
  done?: (line: string) => void;
  fail: (e: unknown) => void;
}

export interface ChainOptions {
  card: AuditMacCard;
  macKey: KeyIndex;
  clock: () => Date;
  writer: Pick<GroupCommitWriter, 'epoch' | 'broken' | 'add' | 'kick'>;
  /** a record that could not be chained (card, bad time, a broken trail) */
  failed(err: unknown): void;
}

export class AuditChain {
  seq = 0;
  prev = GENESIS;
  lastTime: string | null = null;
  /**
   * Run before chaining while set (recovery waiting for the card): it may put records first in line; a
   * throw fails everything queued, and it is tried again with the next event.
   */
  gate: (() => Promise<void>) | null = null;
  private queued: QueuedEvent[] = [];
  private loop: Promise<void> = Promise.resolve();
  private running = false;

  constructor(private readonly o: ChainOptions) {}

  /** Continue after `at` (recovery's end, or the last durable record after a rollback). */
  rewind(at: DurablePoint): void {
    this.seq = at.seq;
    this.prev = at.mac;
    this.lastTime = at.time;
  }

  enqueue(q: QueuedEvent): void {
    this.queued.push(q);
    if (this.running) return;
    this.running = true;
    this.loop = this.chainLoop();
  }

  /** Records that go before everything queued (recovery's notes). */
  putFirst(qs: QueuedEvent[]): void {
    this.queued.unshift(...qs);
  }

  get busy(): boolean {
    return this.running;
  }

  /** Resolves when what is queued now has been chained (look at `busy` again after). */
  idle(): Promise<void> {
    return this.loop;
  }

  private async chainLoop(): Promise<void> {
    // the running flag is cleared in this function, right after the last look at the queue finds it
    // empty: an event queued after that starts a new loop (an await in between would strand it)
    while (this.queued.length > 0) {
      if (this.gate) {
        try {
          await this.gate();
          this.gate = null;
        } catch (err) {
          for (const q of this.queued.splice(0)) {
            this.o.failed(err);
            q.fail(err);
          }
          continue;
        }
      }
      // each record joins the writer's queue once chained (a write in flight takes it next), and the
      // writer starts once the batch is chained: an idle writer gets it in one write
      for (const q of this.queued.splice(0)) {
        const r = await this.place(q);
        if (r) this.o.writer.add(r);
      }
      this.o.writer.kick();
    }
    this.running = false;
  }

  /** The record of `q` on top of the chain, or undefined when it failed (never throws). */
  private async place({ event, done, fail, skipTo }: QueuedEvent): Promise<ChainedRecord | undefined> {
    const w = this.o.writer;
    let seq: number;
    let time: Date;
    let body: string;
    let input: Buffer;
    let mac: string;
    let epoch: number;
    try {
      for (;;) {
        // a failed write rolls the chain back (epoch moves on) while a MAC is on the card: chain again
        epoch = w.epoch;
        seq = Math.max(this.seq, skipTo ?? 0) + 1;
        time = event.time ?? this.o.clock();
        body = bodyText(seq, this.prev, event, time);
        input = macInput(body);
        mac = (await this.o.card.hmacSm3(this.o.macKey, input)).toString('hex');
        if (epoch === w.epoch) break;
      }
      if (w.broken) throw new Error(`audit trail cannot be written: ${w.broken}`);
    } catch (err) {
      this.o.failed(err);
      fail(err);
      return undefined;
    }
    this.seq = seq;
    this.prev = mac;
    const iso = time.toISOString();
    this.lastTime = iso;
    const tail = `,"mac":"${mac}"}`;
    // the stored bytes: the body as already encoded for the MAC, without its closing brace, then the MAC
    const bytes = [input.subarray(MAC_DOMAIN_BYTES, input.length - 1), Buffer.from(tail + '\n', 'latin1')];
    return { line: body.slice(0, -1) + tail, bytes, seq, mac, date: time, time: iso, kind: event.kind, done, fail, epoch };
  }
}
