/**
 * The audit trail's group commit: chained records go to their day file in as few writes as possible —
 * what is queued while a write + fsync is on its way goes out together in the next one — and each
 * record resolves only once a completed fsync holds it. A failed write (disk full, I/O) is cut back off
 * the file and moves the epoch on: records chained on top of it are failed, not written (their `prev`
 * names a record that is not there), and the chain continues from the last durable record. If the cut
 * itself fails, every further record is refused until a restart (whose recovery cuts the file).
 * Records never go into an older day's file than one already in use, even if the clock steps back.
 */
import { cstDayStart } from '../platform/time.ts';
import type { Logger } from '../platform/log.ts';
import { GENESIS, localDay, type AuditKind } from './audit-record.ts';

/** A record with its place in the chain, waiting for its write + fsync. */
export interface ChainedRecord {
  line: string;
  /** the line's UTF-8 bytes with its newline, in pieces */
  bytes: Buffer[];
  seq: number;
  mac: string;
  /** the record's time, and as written */
  date: Date;
  time: string;
  kind: AuditKind;
  /** called with the stored line once it is durable */
  done?: (line: string) => void;
  fail: (e: unknown) => void;
  /** the writer's epoch when this record was chained: a rollback fails every record of an older one */
  epoch: number;
}

/** The last record on disk: where the chain continues after a rollback. */
export interface DurablePoint {
  seq: number;
  mac: string;
  time: string | null;
}

/** The day files as the writer uses them (src/ops/audit-day-files.ts). */
export interface DaySink {
  /** opens the file of `day`; true when it was created */
  use(day: string): Promise<boolean>;
  /** bytes of the open file */
  readonly size: number;
  /** writes all of it, then fsync */
  write(buf: Buffer): Promise<void>;
  /** cuts the open file back to `size`, durably */
  cut(size: number): Promise<void>;
  readonly open: boolean;
}

export interface GroupCommitHooks {
  /** a day file was created for a write (counted even if that write then fails: the file stays) */
  created?(): void;
  /** a group is durable (its records resolve right after); `bytes` written */
  written?(group: readonly ChainedRecord[], bytes: number): void;
  /** after the records of a durable group resolved, before the next write (retention); `rotated` when its day file
   * was created; a throw is logged */
  afterWrite?(rotated: boolean): Promise<void>;
  /** a write failed and was cut back: the chain continues from `to` */
  rolledBack(to: DurablePoint, err: unknown): void;
  /** every pending record went out or failed */
  settled?(): void;
  logger?: Logger;
}

export class GroupCommitWriter {
  /** bumped by each rollback: records chained before it are not written */
  epoch = 0;
  durable: DurablePoint = { seq: 0, mac: GENESIS, time: null };
  /** false after a failed write, true again after the next good one */
  writable = true;
  /** set when a failed write could not be cut off: nothing is written until a restart */
  broken: string | null = null;
  private pending: ChainedRecord[] = [];
  private loop: Promise<void> = Promise.resolve();
  private running = false;
  private lastWriteError = '';
  /** newest day file in use: records never go into an older one */
  private minDay = '';
  /** the current CST day's bounds, so most records skip the formatting */
  private dayCache = { from: 0, to: -1, day: '' };

  constructor(
    private readonly files: DaySink,
    private readonly hooks: GroupCommitHooks,
  ) {}

  /** Continue after `durable` (recovery's end); `newestDay` is the newest day file there is. */
  start(durable: DurablePoint, newestDay: string): void {
    this.durable = { ...durable };
    this.minDay = newestDay;
  }

  /** Queue a record (in chain order): a write in progress takes it next; otherwise kick() starts one. */
  add(record: ChainedRecord): void {
    this.pending.push(record);
  }

  /** Start writing what is queued, unless a write is in progress already. */
  kick(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.flushLoop();
  }

  get busy(): boolean {
    return this.running;
  }

  /** Resolves when what is queued now has been written or failed (look at `busy` again after). */
  idle(): Promise<void> {
    return this.loop;
  }

  /** localDay() of a record, never older than a day file already in use */
  private dayOf(t: Date): string {
    const ms = t.getTime();
    let c = this.dayCache;
    if (ms < c.from || ms >= c.to) {
      const from = cstDayStart(t).getTime(); // China days (localDay)
      c = this.dayCache = { from, to: from + 86_400_000, day: localDay(t) };
    }
    if (c.day > this.minDay) this.minDay = c.day;
    return this.minDay;
  }

  /** Writes pending records, a day's group at a time (write + fsync); clears `running` right after its last look at the queue. */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      const days = batch.map((p) => this.dayOf(p.date));
      let i = 0;
      while (i < batch.length) {
        const day = days[i]!;
        let j = i;
        while (j < batch.length && days[j] === day) j++;
        await this.writeGroup(day, batch.slice(i, j));
        i = j;
      }
      this.hooks.settled?.();
    }
    this.running = false;
  }

  private async writeGroup(day: string, group: ChainedRecord[]): Promise<void> {
    const stale = group.filter((p) => p.epoch !== this.epoch);
    if (stale.length > 0) {
      // chained on top of records that could not be written: their prev names a record that is not there
      const e = new Error(`audit: not written, chained after a record whose write failed (${this.lastWriteError})`);
      for (const p of stale) p.fail(e);
    }
    const live = stale.length > 0 ? group.filter((p) => p.epoch === this.epoch) : group;
    if (live.length === 0) return;
    let before = -1;
    let rotated = false;
    try {
      rotated = await this.files.use(day);
      if (rotated) this.hooks.created?.();
      before = this.files.size;
      const buf = Buffer.concat(live.flatMap((p) => p.bytes));
      await this.files.write(buf);
      const last = live[live.length - 1]!;
      this.durable = { seq: last.seq, mac: last.mac, time: last.time };
      this.writable = true;
      this.hooks.written?.(live, buf.length);
      for (const p of live) p.done?.(p.line);
    } catch (err) {
      this.writable = false;
      this.lastWriteError = err instanceof Error ? err.message : String(err);
      this.hooks.logger?.error('audit write failed', { err: err as Error });
      await this.rollBack(before, err);
      for (const p of live) p.fail(err);
      return;
    }
    try {
      await this.hooks.afterWrite?.(rotated);
    } catch (err) {
      // the group is durable and resolved: a failure after it (pruning) must not cut it back off
      this.hooks.logger?.error('audit: the step after a write failed', { err: err as Error });
    }
  }

  /** Cut what reached the file back off; the chain goes back to the last durable record (no gap, no half line). */
  private async rollBack(size: number, err: unknown): Promise<void> {
    this.epoch++;
    this.hooks.rolledBack(this.durable, err);
    if (size < 0 || !this.files.open) return;
    try {
      await this.files.cut(size);
    } catch (e) {
      this.broken = `a failed write could not be cut off (${(e as Error).message}); restart to recover`;
      this.hooks.logger?.error('audit: a failed write could not be cut off; refusing records until restart', { err: e as Error });
    }
  }
}
