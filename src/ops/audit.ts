/**
 * Tamper-evident audit trail (seed 000 §三(四)3: integrity-protected, kept ≥ 12 months; seed 002: HMAC-SM3).
 *
 * Every record is one JSON line in `<stateDir>/audit/audit-YYYYMMDD.jsonl` (local day). A record carries
 * `seq` (1, 2, 3 … without gaps over the appliance's life) and `prev` (the previous record's MAC), and
 * ends with `mac` = HMAC-SM3(card key `mac`, `ehc-edge audit v1\n` ‖ the line's bytes before `,"mac":…`
 * closed by `}`). So an edit breaks the record's MAC, a deletion leaves a gap in `seq`, a reordering puts
 * a `seq` out of place, and nobody without the card key can repair the chain. The chain continues across days, files and restarts.
 *
 * Appends are group-committed: records queued while a write is on disk go out in the next single
 * write + fsync; `append` resolves only when its record is durable.
 *
 * Retention: files older than `retainDays` are deleted; when the folder exceeds `maxBytes` the oldest
 * days are deleted even if younger (a full disk would stop verifications) — loudly: an error log and an
 * `audit.pruned` record. Before deleting, `anchor.json` (MACed) records where the kept chain starts so
 * verification still proves nothing was removed from the start. `head.json` (MACed, refreshed at most once a
 * second and on close, durably through src/platform/durable-write.ts) records the last durable seq so a
 * cut tail is detected too.
 *
 * This room is the chain (seq, prev, MAC in arrival order) and its group commit; beside it, one job each:
 *   audit-record.ts     the record format, its MAC input, sealed documents, masking, file names
 *   audit-recover.ts    recovery at open: the chain's end, cut tails, gaps → signed integrity records
 *   audit-day-files.ts  the day files: open per day, whole write + fsync, cut back after a failed write
 *   audit-head.ts       head.json and its copy outside the folder (the outbox), written one at a time
 *   audit-retention.ts  retention and the size cap, anchor.json before deleting
 *   audit-lock.ts       one writer (writer.lock)
 *   audit-verify.ts     the verifier (`ehc-edge verify-audit`)
 *
 * Personal data: subjects are masked here (name 2nd char `*`, ID first 4 + last 4, phone 3 + 4), and
 * `detail` passes through maskForLog (maskDeep plus other spellings of identity fields) — the trail never
 * holds a clear identity.
 */
import { cstDayStart } from '../platform/time.ts';
import type { KeyIndex } from '../crypto/card.ts';
import { makeDirDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import {
  GENESIS,
  MAC_DOMAIN_BYTES,
  bodyText,
  listAuditFiles,
  localDay,
  macInput,
  macOf,
  type AuditEvent,
  type AuditKind,
  type AuditMacCard,
  type AuditRecord,
  type HeadDoc,
} from './audit-record.ts';

import { integrityEvent, recoverChain, type IntegrityAlarm } from './audit-recover.ts';
import { WriterLock } from './audit-lock.ts';
import { HeadWriter, type HeadAnchor } from './audit-head.ts';
import { pruneAuditFiles } from './audit-retention.ts';
import { AuditDayFiles } from './audit-day-files.ts';

export * from './audit-record.ts';
export type { IntegrityAlarm, IntegrityProblem } from './audit-recover.ts';

export interface AuditOptions {
  /** the audit folder, normally `<stateDir>/audit` */
  dir: string;
  card: AuditMacCard;
  /** key index of the MAC key (config card.keys.mac) */
  macKey: KeyIndex;
  retainDays?: number;
  maxBytes?: number;
  logger?: Logger;
  clock?: () => Date;
  /** where the head is kept outside the audit folder (the outbox database): sealed head text */
  anchor?: HeadAnchor;
  /** the outbox's acknowledged high-water mark, recorded in each head */
  outboxSeq?: () => number | undefined;
}

/** An integrity alarm as status shows it until an admin acknowledges it. */
export interface AuditAlarm extends IntegrityAlarm {
  /** seq of the signed `audit.integrity` record */
  seq?: number;
  raisedAt: string;
}

export interface AuditState {
  dir: string;
  lastSeq: number;
  lastTime: string | null;
  files: number;
  bytes: number;
  /** appends that failed (card or disk error) since start */
  failures: number;
  lastError: string | null;
  /** false while the last write failed (disk full, I/O): identity answers are refused under audit.onFailure = refuse */
  writable?: boolean;
  /** integrity alarms not yet acknowledged (`ehc-edge verify-audit --ack`) */
  alarms?: AuditAlarm[];
}

/** An event waiting for its place in the chain (seq, prev, MAC), in arrival order. */
interface Queued {
  event: AuditEvent;
  /** recovery records explaining a gap: this record takes seq skipTo + 1 */
  skipTo?: number;
  /** called with the stored line once it is durable; record() passes none (nobody reads it back) */
  done?: (line: string) => void;
  fail: (e: unknown) => void;
}

/** A chained record waiting for its write + fsync. */
interface Pending {
  line: string;
  /** the line's UTF-8 bytes with its newline, in pieces */
  bytes: Buffer[];
  day: string;
  seq: number;
  mac: string;
  time: string;
  kind: AuditKind;
  done?: (line: string) => void;
  fail: (e: unknown) => void;
  /** the chain's epoch when this record was chained: a rollback fails every record of an older one */
  epoch: number;
}

export class AuditTrail {
  private seq = 0;
  private prev = GENESIS;
  private lastTime: string | null = null;
  private durableSeq = 0;
  private durableMac = GENESIS;
  private durableTime: string | null = null;
  /** events not yet chained; one loop (`chaining`) gives them seq and MAC in arrival order */
  private queued: Queued[] = [];
  private chaining: Promise<void> = Promise.resolve();
  private chainBusy = false;
  private pending: Pending[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private flushBusy = false;
  private readonly dayFiles: AuditDayFiles;
  /** newest day file in use: records never go into an older one */
  private minDay = '';
  private bytes = 0;
  private files = 0;
  private failures = 0;
  private lastError: string | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private readonly head: HeadWriter;
  private readonly writer: WriterLock;
  private lastHead?: HeadDoc;
  private alarms: AuditAlarm[] = [];
  private outboxFloor = 0;
  /** bumped by each rollback: records chained before it are not written */
  private epoch = 0;
  /** false after a failed write, true again after the next good one */
  private writable = true;
  private broken: string | null = null;
  private closed = false;
  /** last durable verification records' lines (already masked), newest last, for the status page */
  private readonly recent: string[] = [];
  private readonly retainDays: number;
  private readonly maxBytes: number;
  private readonly clock: () => Date;

  private constructor(private readonly opts: AuditOptions) {
    this.retainDays = opts.retainDays ?? 400;
    this.maxBytes = opts.maxBytes ?? 2_147_483_648;
    this.clock = opts.clock ?? (() => new Date());
    this.head = new HeadWriter(opts.dir, opts.card, opts.macKey, opts.anchor, opts.logger);
    this.writer = new WriterLock(opts.dir);
    this.dayFiles = new AuditDayFiles(opts.dir);
  }

  /**
   * Open (creating) the audit folder and continue the chain from its last record. One writer only: a
   * second process (a tool while the appliance runs) would fork the chain, so `writer.lock` (O_EXCL,
   * holding the pid) refuses it; a lock left by a dead process is taken over.
   */
  static async open(opts: AuditOptions): Promise<AuditTrail> {
    const trail = new AuditTrail(opts);
    await makeDirDurably(opts.dir);
    await trail.lock();
    try {
      await macOf(opts.card, opts.macKey, 'ehc-edge audit probe');
    } catch (err) {
      // a card that cannot MAC (keys missing, device down) is a degraded start, not a failed one: recovery
      // waits for the card, and records are refused until it answers
      trail.deferredRecovery = err instanceof Error ? err : new Error(String(err));
      opts.logger?.error('audit: the crypto card cannot MAC; recovery waits for it and records are refused until then', { err: trail.deferredRecovery });
      return trail;
    }
    try {
      await trail.recover();
    } catch (err) {
      await trail.unlock();
      throw err;
    }
    await trail.prune();
    return trail;
  }

  private lock(): Promise<void> {
    return this.writer.take();
  }

  private unlock(): Promise<void> {
    return this.writer.release();
  }

  /** set while the card could not MAC at open: the first append after it can runs recovery first */
  private deferredRecovery: Error | null = null;

  private async recover(awaitNotes = true): Promise<void> {
    const outsideHead = await this.head.readOutside();
    const r = await recoverChain({ dir: this.opts.dir, card: this.opts.card, macKey: this.opts.macKey, outsideHead, logger: this.opts.logger, clock: this.clock });
    this.files = r.files;
    this.bytes = r.bytes;
    this.minDay = (await listAuditFiles(this.opts.dir)).at(-1)?.day ?? '';
    this.seq = r.seq;
    this.prev = r.prev;
    this.lastTime = r.lastTime;
    this.durableSeq = this.seq;
    this.durableMac = this.prev;
    this.durableTime = this.lastTime;
    this.lastHead = r.head;
    this.outboxFloor = r.head?.outboxSeq ?? 0;
    const carried = (r.head?.alarms ?? []).map((a) => ({ ...a, problem: a.problem as IntegrityAlarm['problem'] }));
    this.alarms = [...carried, ...r.alarms.map((a) => ({ ...a, raisedAt: this.clock().toISOString() }))];
    const noteWritten = (rec: AuditRecord, i: number) => {
      if (rec.action === 'audit.integrity') {
        const alarm = this.alarms.find((a) => a.problem === (r.notes[i]!.event.detail as IntegrityAlarm).problem && a.seq === undefined);
        if (alarm) alarm.seq = rec.seq;
      }
    };
    if (!awaitNotes) {
      // inside the chain loop (recovery deferred until the card answered): the notes go first in line
      const fail = (err: unknown) => this.opts.logger?.error('audit: a recovery record could not be written', { err: err as Error });
      this.queued.unshift(...r.notes.map((n, i) => ({ event: n.event, skipTo: n.skipTo, done: (line: string) => noteWritten(JSON.parse(line) as AuditRecord, i), fail })));
      this.scheduleHead();
      return;
    }
    const written = await Promise.all(r.notes.map((n) => new Promise<AuditRecord>((resolve, reject) => this.enqueue({ event: n.event, skipTo: n.skipTo, done: (line) => resolve(JSON.parse(line) as AuditRecord), fail: reject }))));
    written.forEach(noteWritten);
    // a fresh head at once: it names what recovery left (and the open alarms), and it is never missing
    // while day files exist
    await this.flush();
    await this.writeHead();
  }

  /** Integrity alarms raised at start (or later) and not yet acknowledged by an admin. */
  integrityAlarms(): AuditAlarm[] {
    return this.alarms.map((a) => ({ ...a }));
  }

  /** Raise an alarm found outside the trail (the outbox behind its high-water mark): a signed record, then status. */
  async raiseAlarm(a: IntegrityAlarm): Promise<AuditRecord> {
    const rec = await this.append(integrityEvent(a));
    this.alarms.push({ ...a, seq: rec.seq, raisedAt: rec.time });
    await this.writeHead();
    return rec;
  }

  /** An admin has looked at the alarms: a signed acknowledgement record; status is clean again. */
  async acknowledgeAlarms(operator: string, note?: string): Promise<AuditRecord | undefined> {
    if (this.alarms.length === 0) return undefined;
    const seqs = this.alarms.map((a) => a.seq).filter((s): s is number => s !== undefined);
    const rec = await this.append({ kind: 'security', action: 'audit.integrity-ack', operator, detail: { alarms: seqs, problems: this.alarms.map((a) => a.problem), ...(note ? { note } : {}) } });
    this.alarms = [];
    this.outboxFloor = 0;
    await this.writeHead();
    return rec;
  }

  /** The outbox's high-water mark as the last head recorded it (checked by the composition root at start). */
  recordedOutboxSeq(): number | undefined {
    return this.lastHead?.outboxSeq;
  }

  /** Append one record; resolves with it once it is fsync'd. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new Error('audit trail is closed'));
    return new Promise<AuditRecord>((resolve, reject) => this.enqueue({ event, done: (line) => resolve(JSON.parse(line) as AuditRecord), fail: reject }));
  }

  /** Append without waiting; a failure is logged (and counted in state()), never thrown. */
  record(event: AuditEvent): void {
    if (this.closed) return void this.opts.logger?.error('audit append failed', { err: new Error('audit trail is closed'), action: event.action });
    this.enqueue({ event, fail: (err) => this.opts.logger?.error('audit append failed', { err: err as Error, action: event.action }) });
  }

  private enqueue(q: Queued): void {
    this.queued.push(q);
    if (!this.chainBusy) {
      this.chainBusy = true;
      this.chaining = this.chainLoop();
    }
  }

  /**
   * Gives queued events their seq, prev and MAC strictly one after another (the card call is async,
   * and each MAC covers the previous one), then hands them to the writer.
   */
  private async chainLoop(): Promise<void> {
    // the busy flag is cleared in this function, right after the last look at the queue finds it
    // empty: an event queued after that starts a new loop (an await in between would strand it)
    while (this.queued.length > 0) {
      if (this.deferredRecovery) {
        try {
          await macOf(this.opts.card, this.opts.macKey, 'ehc-edge audit probe');
          await this.recover(false);
          this.deferredRecovery = null;
          this.opts.logger?.info('audit: the crypto card answers; recovery done, records are written again', { seq: this.seq });
        } catch (err) {
          for (const q of this.queued.splice(0)) {
            this.noteFailure(err);
            q.fail(err);
          }
          continue;
        }
      }
      const items = this.queued.splice(0);
      for (const { event, done, fail, skipTo } of items) {
        let seq: number;
        let time: Date;
        let body: string;
        let input: Buffer;
        let mac: string;
        let epoch: number;
        try {
          // nothing in this loop may throw past here: the busy flag below must always be cleared
          for (;;) {
            // a failed write rolls the chain back (epoch moves on) while a MAC is on the card: chain again
            epoch = this.epoch;
            seq = Math.max(this.seq, skipTo ?? 0) + 1;
            time = event.time ?? this.clock();
            body = bodyText(seq, this.prev, event, time);
            input = macInput(body);
            mac = (await this.opts.card.hmacSm3(this.opts.macKey, input)).toString('hex');
            if (epoch === this.epoch) break;
          }
          if (this.broken) throw new Error(`audit trail cannot be written: ${this.broken}`);
        } catch (err) {
          this.noteFailure(err);
          fail(err);
          continue;
        }
        this.seq = seq;
        this.prev = mac;
        const iso = time.toISOString();
        this.lastTime = iso;
        const tail = `,"mac":"${mac}"}`;
        const line = body.slice(0, -1) + tail;
        // the stored bytes: the body as already encoded for the MAC, without its closing brace, then the MAC
        const bytes = [input.subarray(MAC_DOMAIN_BYTES, input.length - 1), Buffer.from(tail + '\n', 'latin1')];
        // never write into an older day's file, even if the clock steps back
        const today = this.dayOf(time);
        const day = today > this.minDay ? today : this.minDay;
        this.minDay = day;
        this.pending.push({ line, bytes, day, seq, mac, time: iso, kind: event.kind, done, fail, epoch });
      }
      this.kick();
    }
    this.chainBusy = false;
  }

  /** localDay() (the CST day) of a time, remembering the current day's bounds so most records skip the formatting */
  private dayCache = { from: 0, to: -1, day: '' };
  private dayOf(t: Date): string {
    const ms = t.getTime();
    const c = this.dayCache;
    if (ms >= c.from && ms < c.to) return c.day;
    const from = cstDayStart(t).getTime(); // China days (localDay)
    const to = from + 86_400_000;
    this.dayCache = { from, to, day: localDay(t) };
    return this.dayCache.day;
  }

  private noteFailure(err: unknown): void {
    this.failures++;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  private kick(): void {
    if (this.flushBusy) return;
    this.flushBusy = true;
    this.flushing = this.flushLoop();
  }

  /** Writes pending records, a day's group at a time (write + fsync); clears flushBusy as chainLoop does. */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      let i = 0;
      while (i < batch.length) {
        const day = batch[i]!.day;
        let j = i;
        while (j < batch.length && batch[j]!.day === day) j++;
        const group = batch.slice(i, j);
        const stale = group.filter((p) => p.epoch !== this.epoch);
        if (stale.length > 0) {
          // chained on top of records that could not be written: their prev names a record that is not there
          const e = new Error(`audit: not written, chained after a record whose write failed (${this.lastError})`);
          for (const p of stale) p.fail(e);
        }
        const live = group.filter((p) => p.epoch === this.epoch);
        if (live.length === 0) {
          i = j;
          continue;
        }
        let before = -1;
        try {
          const rotated = await this.dayFiles.use(day);
          if (rotated) this.files++;
          before = this.dayFiles.size;
          const buf = Buffer.concat(live.flatMap((p) => p.bytes));
          await this.dayFiles.write(buf);
          this.bytes += buf.length;
          const last = live[live.length - 1]!;
          this.durableSeq = last.seq;
          this.durableMac = last.mac;
          this.durableTime = last.time;
          this.writable = true;
          for (const p of live) {
            if (p.kind === 'verify') {
              this.recent.push(p.line);
              if (this.recent.length > 50) this.recent.shift();
            }
            p.done?.(p.line);
          }
          if (rotated || this.bytes > this.maxBytes) await this.prune();
        } catch (err) {
          this.noteFailure(err);
          this.writable = false;
          this.opts.logger?.error('audit write failed', { err: err as Error });
          await this.rollBack(before);
          for (const p of live) p.fail(err);
        }
        i = j;
      }
      this.scheduleHead();
    }
    this.flushBusy = false;
  }

  /**
   * After a failed write (disk full, I/O error): cut what reached the file back off, and take the chain
   * back to the last durable record, so the next record follows it with no gap and no half line. If the
   * cut itself fails, the trail refuses every further record until a restart (whose recovery cuts it).
   */
  private async rollBack(size: number): Promise<void> {
    this.epoch++;
    this.seq = this.durableSeq;
    this.prev = this.durableMac;
    this.lastTime = this.durableTime;
    if (size < 0 || !this.dayFiles.open) return;
    try {
      await this.dayFiles.cut(size);
    } catch (err) {
      this.broken = `a failed write could not be cut off (${(err as Error).message}); restart to recover`;
      this.opts.logger?.error('audit: a failed write could not be cut off; refusing records until restart', { err: err as Error });
    }
  }

  private scheduleHead(): void {
    if (this.headTimer || this.closed) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      void this.writeHead().catch((err) => this.opts.logger?.warn('audit head not written', { err: err as Error }));
    }, 1000);
    this.headTimer.unref();
  }

  /** The head as it stands when its write's turn comes (src/ops/audit-head.ts writes one after another). */
  private async writeHead(closed = false): Promise<void> {
    await this.head.write(
      () => {
        const doc: HeadDoc = { seq: this.durableSeq, mac: this.durableMac, time: this.durableTime ?? this.clock().toISOString() };
        if (closed) doc.closed = true;
        // the high-water mark never moves back by itself: only an admin's acknowledgement resets the floor
        const outboxSeq = Math.max(this.opts.outboxSeq?.() ?? 0, this.outboxFloor);
        if (outboxSeq > 0) doc.outboxSeq = outboxSeq;
        if (this.alarms.length) doc.alarms = this.alarms.map((a) => ({ seq: a.seq, problem: a.problem, message: a.message, raisedAt: a.raisedAt, ...(a.outbox ? { outbox: true } : {}) }));
        return doc;
      },
      (doc) => (this.lastHead = doc),
    );
  }

  /** Delete days past retention, then the oldest days while over the size cap (never today's file; src/ops/audit-retention.ts). */
  async prune(): Promise<string[]> {
    const pruned = await pruneAuditFiles({ dir: this.opts.dir, card: this.opts.card, macKey: this.opts.macKey, retainDays: this.retainDays, maxBytes: this.maxBytes, now: this.clock() });
    if (!pruned) return [];
    const { removed, total, firstSeq } = pruned;
    this.files -= removed.length;
    this.bytes = total;
    const capped = removed.filter((r) => r.reason === 'cap').map((r) => r.name);
    if (capped.length) {
      this.opts.logger?.error('audit: size cap reached, deleted days younger than the retention period', { files: capped, maxBytes: this.maxBytes });
    }
    this.record({ kind: 'audit', action: 'audit.pruned', detail: { removed, firstSeq } });
    return removed.map((r) => r.name);
  }

  /** Wait until everything appended so far is on disk. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.chainBusy) await this.chaining;
      else if (this.flushBusy) await this.flushing;
      else return;
    }
  }

  /** The last `n` durable verification records (masked), newest first. */
  recentVerifications(n = 20): AuditRecord[] {
    return this.recent.slice(-n).reverse().map((line) => JSON.parse(line) as AuditRecord);
  }

  state(): AuditState {
    return {
      dir: this.opts.dir,
      lastSeq: this.seq,
      lastTime: this.lastTime,
      files: this.files,
      bytes: this.bytes,
      failures: this.failures,
      lastError: this.lastError,
      alarms: this.integrityAlarms(),
      writable: this.writable && !this.broken && !this.deferredRecovery,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = null;
    // a trail whose recovery never ran (card down all along) leaves head.json as it was
    if (!this.deferredRecovery) await this.writeHead(true);
    await this.dayFiles.close();
    await this.unlock();
  }
}
