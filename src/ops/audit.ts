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
 * The verifier is src/ops/audit-verify.ts.
 *
 * Personal data: subjects are masked here (name 2nd char `*`, ID first 4 + last 4, phone 3 + 4), and
 * `detail` passes through maskForLog (maskDeep plus other spellings of identity fields) — the trail never
 * holds a clear identity.
 */
import { cstDayStart } from '../platform/time.ts';
import { open, readFile, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { KeyIndex } from '../crypto/card.ts';
import { fsyncDirSync as fsyncDir, makeDirDurably, replaceFileDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import {
  GENESIS,
  MAC_DOMAIN_BYTES,
  auditFileName,
  bodyText,
  listAuditFiles,
  localDay,
  macInput,
  macOf,
  openSealed,
  sealDoc,
  splitLine,
  type AnchorDoc,
  type AuditEvent,
  type AuditKind,
  type AuditMacCard,
  type AuditRecord,
  type HeadDoc,
} from './audit-record.ts';

import { integrityEvent, recoverChain, type IntegrityAlarm } from './audit-recover.ts';

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
  anchor?: { read(): Promise<string | undefined> | string | undefined; write(text: string): Promise<void> | void };
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
  private handle: FileHandle | null = null;
  private handleDay = '';
  /** newest day file in use: records never go into an older one */
  private minDay = '';
  private bytes = 0;
  private files = 0;
  private failures = 0;
  private lastError: string | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private headChain: Promise<void> = Promise.resolve();
  private lastHead?: HeadDoc;
  private alarms: AuditAlarm[] = [];
  private lastHeadLog = 0;
  private outboxFloor = 0;
  /** bumped by each rollback: records chained before it are not written */
  private epoch = 0;
  private handleBytes = 0;
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

  private get lockFile(): string {
    return path.join(this.opts.dir, 'writer.lock');
  }

  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number((await readFile(this.lockFile, 'utf8').catch(() => '')).trim());
        let alive = false;
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          try {
            process.kill(pid, 0);
            alive = true;
          } catch (e) {
            alive = (e as NodeJS.ErrnoException).code === 'EPERM';
          }
        }
        if (alive || pid === process.pid) throw new Error(`audit trail ${this.opts.dir} is in use by process ${pid}: one writer only`);
        await unlink(this.lockFile).catch(() => {});
      }
    }
    throw new Error(`audit trail ${this.opts.dir}: cannot take writer.lock`);
  }

  private async unlock(): Promise<void> {
    await unlink(this.lockFile).catch(() => {});
  }

  /** set while the card could not MAC at open: the first append after it can runs recovery first */
  private deferredRecovery: Error | null = null;

  private async recover(awaitNotes = true): Promise<void> {
    const outsideHead = await this.readOutsideHead();
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

  private async readOutsideHead(): Promise<HeadDoc | undefined> {
    const text = await this.opts.anchor?.read();
    if (!text) return undefined;
    try {
      const sealed = JSON.parse(text) as { doc: HeadDoc; mac: string };
      if ((await macOf(this.opts.card, this.opts.macKey, JSON.stringify(sealed.doc))) === sealed.mac) return sealed.doc;
    } catch {
      /* below */
    }
    this.opts.logger?.error('audit: the head anchored in the outbox fails its MAC (ignored)');
    return undefined;
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
          const rotated = await this.ensureHandle(day);
          before = this.handleBytes;
          const buf = Buffer.concat(live.flatMap((p) => p.bytes));
          // a short write (the disk filling up) is not an error to write(): write the rest until it is one
          for (let off = 0; off < buf.length; ) off += (await this.handle!.write(buf, off, buf.length - off)).bytesWritten;
          await this.handle!.sync();
          this.handleBytes += buf.length;
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
    if (size < 0 || !this.handle) return;
    try {
      await this.handle.truncate(size);
      await this.handle.sync();
    } catch (err) {
      this.broken = `a failed write could not be cut off (${(err as Error).message}); restart to recover`;
      this.opts.logger?.error('audit: a failed write could not be cut off; refusing records until restart', { err: err as Error });
    }
  }

  private async ensureHandle(day: string): Promise<boolean> {
    if (this.handle && this.handleDay === day) return false;
    if (this.handle) await this.handle.close();
    const file = path.join(this.opts.dir, auditFileName(day));
    let existed = true;
    try {
      await stat(file);
    } catch {
      existed = false;
    }
    this.handle = await open(file, 'a', 0o600);
    this.handleDay = day;
    this.handleBytes = (await this.handle.stat()).size;
    if (!existed) {
      fsyncDir(this.opts.dir);
      this.files++;
      return true;
    }
    return false;
  }

  private scheduleHead(): void {
    if (this.headTimer || this.closed) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      void this.writeHead().catch((err) => this.opts.logger?.warn('audit head not written', { err: err as Error }));
    }, 1000);
    this.headTimer.unref();
  }

  /** Head writes run one after another (a timer's write and close()'s must not share the temp file). */
  private writeHead(closed = false): Promise<void> {
    const run = async () => {
      const doc: HeadDoc = { seq: this.durableSeq, mac: this.durableMac, time: this.durableTime ?? this.clock().toISOString() };
      if (closed) doc.closed = true;
      // the high-water mark never moves back by itself: only an admin's acknowledgement resets the floor
      const outboxSeq = Math.max(this.opts.outboxSeq?.() ?? 0, this.outboxFloor);
      if (outboxSeq > 0) doc.outboxSeq = outboxSeq;
      if (this.alarms.length) doc.alarms = this.alarms.map((a) => ({ seq: a.seq, problem: a.problem, message: a.message, raisedAt: a.raisedAt, ...(a.outbox ? { outbox: true } : {}) }));
      const sealed = await sealDoc(this.opts.card, this.opts.macKey, doc);
      await replaceFileDurably(path.join(this.opts.dir, 'head.json'), sealed);
      this.lastHead = doc;
      // the same head outside the audit folder, and its seq in the journal (at most once a minute)
      await this.opts.anchor?.write(sealed.trim());
      const now = Date.now();
      if (closed || now - this.lastHeadLog >= 60_000) {
        this.lastHeadLog = now;
        this.opts.logger?.info('audit head', { seq: doc.seq, mac: doc.mac.slice(0, 16), closed: doc.closed ?? false });
      }
    };
    const next = this.headChain.then(run, run);
    this.headChain = next.catch(() => {});
    return next;
  }

  /** Delete days past retention, then the oldest days while over the size cap (never today's file). */
  async prune(): Promise<string[]> {
    const files = await listAuditFiles(this.opts.dir);
    const now = this.clock();
    const oldest = localDay(new Date(now.getTime() - this.retainDays * 86_400_000));
    let total = files.reduce((n, f) => n + f.bytes, 0);
    const remove: Array<{ name: string; reason: 'age' | 'cap' }> = [];
    let k = 0;
    while (k < files.length - 1 && files[k]!.day < oldest) {
      remove.push({ name: files[k]!.name, reason: 'age' });
      total -= files[k]!.bytes;
      k++;
    }
    while (k < files.length - 1 && total > this.maxBytes) {
      remove.push({ name: files[k]!.name, reason: 'cap' });
      total -= files[k]!.bytes;
      k++;
    }
    if (remove.length === 0) return [];
    const keep = files[k]!;
    const first = (await readFile(path.join(this.opts.dir, keep.name), 'utf8')).split('\n', 1)[0] ?? '';
    const parts = splitLine(first);
    if (!parts) throw new Error(`audit: cannot prune, first record of ${keep.name} unreadable`);
    const head = JSON.parse(parts.body) as { seq: number; prev: string };
    const anchor: AnchorDoc = { firstSeq: head.seq, prev: head.prev, prunedAt: now.toISOString(), removed: remove.map((r) => r.name) };
    await replaceFileDurably(path.join(this.opts.dir, 'anchor.json'), await sealDoc(this.opts.card, this.opts.macKey, anchor));
    for (const r of remove) await unlink(path.join(this.opts.dir, r.name));
    fsyncDir(this.opts.dir);
    this.files -= remove.length;
    this.bytes = total;
    const capped = remove.filter((r) => r.reason === 'cap').map((r) => r.name);
    if (capped.length) {
      this.opts.logger?.error('audit: size cap reached, deleted days younger than the retention period', { files: capped, maxBytes: this.maxBytes });
    }
    this.record({ kind: 'audit', action: 'audit.pruned', detail: { removed: remove, firstSeq: head.seq } });
    return remove.map((r) => r.name);
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
    if (this.handle) await this.handle.close();
    this.handle = null;
    await this.unlock();
  }
}
