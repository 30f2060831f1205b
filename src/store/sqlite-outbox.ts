/**
 * The outbox on SQLite (better-sqlite3): WAL and group commit — every append, ack and answer queued
 * within one event-loop turn goes into ONE transaction, and all of them resolve only once it is on
 * disk. Durability is that of synchronous=FULL, without the fsync on the event loop (wal-sync.ts).
 * Records are sealed (SM4-CBC + HMAC-SM3, keys on the card, seal.ts) before they are queued.
 *
 * This room is the queue and its commit engine; beside it, one job each:
 *   outbox-db.ts        the file: tables, opening, statements, SQLite errors → spec codes
 *   wal-sync.ts         fsync of the WAL off the event loop; a batch settles after an fsync begun after it
 *   outbox-limits.ts    maxRecords / maxBytes / maxAgeHours; policy reject-new (3003), never a drop
 *   key-check.ts        the card's keys against the file's check value (8008 when they differ)
 *   deferred-answers.ts answers to deferred verifications, sealed, and the GET /v1/verify/{ovn} lookup
 *   dead-letters.ts     dead letters: list, summary, payload, move back
 * A full disk is EhcError 8007.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { CardPrimitives } from '../crypto/card.ts';
import { EhcError, asEhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import { deadLetterPage, deadLetterPayload, deadLetterSummary, retryDeadLetters, type DeadLetter } from './dead-letters.ts';
import { lookupDeferred, sealAnswer, writeAnswer, type AnswerRow } from './deferred-answers.ts';
import { checkOutboxKeys } from './key-check.ts';
import { mapSqliteError, openOutboxDb, prepareStatements, recordAad, type OutboxStatements, type Row } from './outbox-db.ts';
import { fullError, fullReason, type OutboxLimits } from './outbox-limits.ts';
import type { DeferredAnswer, DeliveryOutcome, Outbox, OutboxEntry, OutboxLookup, OutboxStats, StoredOutboxEntry } from './outbox.ts';
import { RecordSealer, type SealKeys, type Sealed } from './seal.ts';
import { WalSync } from './wal-sync.ts';

export type { OutboxLimits } from './outbox-limits.ts';
export type { DeadLetter } from './dead-letters.ts';

export interface SqliteOutboxOptions {
  /** database file; created with its folder */
  file: string;
  /** needed to append, peek and read answers; the tools may open without one (counts, retry) */
  card?: CardPrimitives;
  keys: SealKeys;
  limits: OutboxLimits;
  log?: Logger;
  /** most operations in one transaction (default 2048) */
  maxBatch?: number;
  /** answers of deferred records are kept this long (default 7 days) */
  answerRetentionHours?: number;
}

type Op =
  | { op: 'insert'; ticket: number; ready: boolean; row?: InsertRow; resolve: (seq: number) => void; reject: (e: unknown) => void }
  | { op: 'ack'; seq: number; outcome: DeliveryOutcome; answer?: AnswerRow; resolve: (v: number) => void; reject: (e: unknown) => void }
  | { op: 'attempt'; seq: number; resolve: (v: number) => void; reject: (e: unknown) => void };

interface InsertRow {
  kind: string;
  method: string;
  outVerifyNo: string;
  createdAt: number;
  sealed: Sealed;
  bytes: number;
}

export class SqliteOutbox extends EventEmitter implements Outbox {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly sealer?: RecordSealer;
  private readonly log?: Logger;
  private readonly limits: OutboxLimits;
  private readonly maxBatch: number;
  private readonly answerRetentionMs: number;
  private readonly wal: WalSync;
  private queue: Op[] = [];
  private scheduled = false;
  private nextTicket = 0;
  private closed = false;
  /** counters as of the last commit, plus what is queued but not committed */
  private cache = { depth: 0, bytes: 0, oldest: null as number | null };
  private queuedInserts = 0;
  private queuedBytes = 0;
  private sinceAnswerPrune = 0;
  readonly counters = { appended: 0, rejectedFull: 0, commits: 0, delivered: 0, dead: 0, writeErrors: 0 };
  /** highest seq whose append was acknowledged (durable), or assigned before this open */
  private acknowledgedHigh = 0;
  private readonly stmt: OutboxStatements;

  private constructor(options: SqliteOutboxOptions) {
    super();
    this.file = path.resolve(options.file);
    this.limits = options.limits;
    this.log = options.log;
    this.maxBatch = options.maxBatch ?? 2048;
    this.answerRetentionMs = (options.answerRetentionHours ?? 24 * 7) * 3600_000;
    if (options.card) this.sealer = new RecordSealer(options.card, options.keys);
    const { db, walFd } = openOutboxDb(this.file);
    this.db = db;
    this.wal = new WalSync(walFd, this.file, () => this.counters.writeErrors++, this.log);
    this.stmt = prepareStatements(db);
    this.refreshCache();
    this.acknowledgedHigh = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").pluck().get() as number | undefined) ?? 0;
  }

  static open(options: SqliteOutboxOptions): SqliteOutbox {
    return new SqliteOutbox(options);
  }

  private refreshCache(): void {
    const c = this.stmt.counters.get() as { depth: number; bytes: number };
    this.cache.depth = c.depth;
    this.cache.bytes = c.bytes;
    this.cache.oldest = (this.stmt.oldest.get() as number | undefined) ?? null;
  }

  private needSealer(): RecordSealer {
    if (!this.sealer) throw new EhcError('8008', 'outbox: opened without the crypto card; cannot seal or open records');
    return this.sealer;
  }

  /** Checks the card's keys against this outbox now (openOutbox does, to fail at start, not later). */
  ready(): Promise<void> {
    return this.checkKeys();
  }

  private keyChecked?: Promise<void>;
  /** The first use checks the card's keys against the file (key-check.ts); a failed check is tried again next time. */
  private checkKeys(): Promise<void> {
    this.keyChecked ??= (async () => {
      const sealer = this.needSealer();
      if (this.closed) throw new EhcError('8007', 'outbox: closed');
      await checkOutboxKeys(this.db, sealer, this.file);
    })();
    this.keyChecked.catch(() => (this.keyChecked = undefined));
    return this.keyChecked;
  }

  /** the sealer, once the keys are checked */
  private readonly openSealer = async (): Promise<RecordSealer> => {
    await this.checkKeys();
    return this.needSealer();
  };

  private fullReason(extraBytes = 0, now = Date.now()): string | undefined {
    return fullReason(this.limits, { depth: this.cache.depth + this.queuedInserts, bytes: this.cache.bytes + this.queuedBytes, oldest: this.cache.oldest }, extraBytes, now);
  }

  /** Resolves with the record's seq once it is committed with fsync. */
  async append(entry: OutboxEntry): Promise<number> {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const sealer = this.needSealer();
    const createdAt = Date.parse(entry.createdAt);
    if (!Number.isFinite(createdAt)) throw new EhcError('9001', 'outbox: createdAt is not an ISO time');
    if (!entry.biz?.out_verify_no) throw new EhcError('9001', 'outbox: biz.out_verify_no is required');
    // a cheap early refusal before spending card operations
    const early = this.fullReason();
    if (early) throw this.refuse(early);
    // hold our place in line now, so records commit in the order append was called
    let resolve!: (seq: number) => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const op: Extract<Op, { op: 'insert' }> = { op: 'insert', ticket: this.nextTicket++, ready: false, resolve, reject };
    this.queue.push(op);
    try {
      await this.checkKeys();
      const plain = Buffer.from(JSON.stringify({ biz: entry.biz, termId: entry.termId, scannerId: entry.scannerId }), 'utf8');
      const outVerifyNo = entry.biz.out_verify_no;
      const sealed = await sealer.seal(plain, recordAad(entry.kind, entry.method, outVerifyNo, createdAt));
      const bytes = sealed.body.length + sealed.iv.length + sealed.mac.length + outVerifyNo.length + 48;
      const reason = this.fullReason(bytes);
      if (reason) throw this.refuse(reason);
      this.queuedInserts++;
      this.queuedBytes += bytes;
      op.row = { kind: entry.kind, method: entry.method, outVerifyNo, createdAt, sealed, bytes };
    } catch (err) {
      op.row = undefined;
      op.ready = true;
      op.reject(err);
      this.schedule();
      return done;
    }
    op.ready = true;
    this.schedule();
    return done;
  }

  private refuse(reason: string): EhcError {
    this.counters.rejectedFull++;
    this.log?.warn('outbox full: refusing a new record (policy reject-new)', { reason, depth: this.cache.depth });
    return fullError(reason);
  }

  async peek(limit: number, afterSeq = 0): Promise<StoredOutboxEntry[]> {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const sealer = this.needSealer();
    await this.checkKeys();
    const rows = this.stmt.peek.all(afterSeq, limit) as Row[];
    const out: StoredOutboxEntry[] = [];
    for (const r of rows) {
      try {
        const plain = await sealer.open(r, recordAad(r.kind, r.method, r.out_verify_no, r.created_at));
        const { biz, termId, scannerId } = JSON.parse(plain.toString('utf8'));
        if (biz?.out_verify_no !== r.out_verify_no) throw new EhcError('9003', 'outbox record: out_verify_no does not match its payload');
        out.push({
          seq: r.seq,
          attempts: r.attempts,
          kind: r.kind as StoredOutboxEntry['kind'],
          method: r.method as StoredOutboxEntry['method'],
          biz,
          termId,
          ...(scannerId ? { scannerId } : {}),
          createdAt: new Date(r.created_at).toISOString(),
        });
      } catch (err) {
        const e = asEhcError(err, '9007', 'outbox record unreadable');
        if (e.code === '8008') throw e; // the card is the problem, not the record: keep it
        this.log?.error('outbox record cannot be opened; moved to dead letters', { seq: r.seq, code: e.code, reason: e.message });
        await this.ack(r.seq, { status: 'dead', retCode: e.code, reason: `unreadable at rest: ${e.message}` });
      }
    }
    return out;
  }

  async ack(seq: number, outcome: DeliveryOutcome, answer?: DeferredAnswer): Promise<void> {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const answerRow = answer ? await sealAnswer(this.needSealer(), answer) : undefined;
    await new Promise<number>((resolve, reject) => {
      this.queue.push({ op: 'ack', seq, outcome, answer: answerRow, resolve, reject });
      this.schedule();
    });
  }

  /** Count a failed delivery attempt (not awaited by replay; committed with the next batch). */
  noteAttempt(seq: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ op: 'attempt', seq, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Commit every ready operation at the head of the queue, up to maxBatch per transaction. */
  private flush(): void {
    this.scheduled = false;
    for (;;) {
      const batch: Op[] = [];
      while (batch.length < this.maxBatch && this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.op === 'insert' && !head.ready) break; // keep append order
        this.queue.shift();
        if (head.op === 'insert' && !head.row) continue; // refused or failed to seal: already rejected
        batch.push(head);
      }
      if (batch.length === 0) break;
      this.commit(batch);
    }
  }

  private commit(batch: Op[]): void {
    const results: number[] = new Array(batch.length).fill(0);
    const now = Date.now();
    let inserted = 0;
    let insertedBytes = 0;
    for (const o of batch) if (o.op === 'insert' && o.row) (inserted++, (insertedBytes += o.row.bytes));
    try {
      this.db.transaction(() => {
        batch.forEach((o, i) => {
          if (o.op === 'insert') {
            const r = o.row!;
            const info = this.stmt.insert.run(r.kind, r.method, r.outVerifyNo, r.createdAt, r.sealed.iv, r.sealed.body, r.sealed.mac, r.bytes);
            results[i] = Number(info.lastInsertRowid);
          } else if (o.op === 'ack') {
            if (o.outcome.status === 'dead') this.stmt.toDead.run(o.outcome.retCode, o.outcome.reason, now, o.seq);
            results[i] = this.stmt.del.run(o.seq).changes;
            if (o.answer) {
              writeAnswer(this.stmt, o.answer);
              this.sinceAnswerPrune++;
            }
          } else {
            this.stmt.attempt.run(o.seq);
          }
        });
        if (this.sinceAnswerPrune >= 1000) {
          this.stmt.pruneAnswers.run(now - this.answerRetentionMs);
          this.sinceAnswerPrune = 0;
        }
      })();
    } catch (err) {
      this.queuedInserts -= inserted;
      this.queuedBytes -= insertedBytes;
      this.counters.writeErrors++;
      const e = mapSqliteError(err, this.file, `committing ${batch.length} operations`);
      this.log?.error('outbox commit failed', { code: e.code, reason: e.message, batch: batch.length });
      for (const o of batch) o.reject(e);
      try {
        this.refreshCache();
      } catch {
        /* keep the previous figures */
      }
      return;
    }
    this.queuedInserts -= inserted;
    this.queuedBytes -= insertedBytes;
    this.counters.commits++;
    this.counters.appended += inserted;
    for (const [i, o] of batch.entries()) {
      if (o.op === 'ack' && results[i]) this.counters[o.outcome.status === 'dead' ? 'dead' : 'delivered']++;
    }
    this.refreshCache();
    this.wal.whenDurable(
      () => {
        batch.forEach((o, i) => {
          if (o.op === 'insert' && results[i]! > this.acknowledgedHigh) this.acknowledgedHigh = results[i]!;
          o.resolve(results[i]!);
        });
        if (inserted > 0) this.emit('append', inserted);
      },
      (e) => batch.forEach((o) => o.reject(e)),
    );
  }

  stats(): OutboxStats {
    const c = this.closed ? { depth: this.cache.depth, bytes: this.cache.bytes, dead: 0 } : (this.stmt.counters.get() as { depth: number; bytes: number; dead: number });
    const oldest = this.closed ? this.cache.oldest : ((this.stmt.oldest.get() as number | undefined) ?? null);
    this.cache.depth = c.depth;
    this.cache.bytes = c.bytes;
    this.cache.oldest = oldest;
    const fullReason = this.fullReason(0);
    return {
      depth: c.depth,
      bytes: c.bytes,
      oldestAgeSeconds: oldest === null ? null : Math.max(0, Math.round((Date.now() - oldest) / 1000)),
      dead: c.dead,
      full: fullReason !== undefined,
      ...(fullReason ? { fullReason } : {}),
    };
  }

  /** What GET /v1/verify/{out_verify_no} shows for a deferred request: still queued, or its answer. */
  lookup(outVerifyNo: string): Promise<OutboxLookup | null> {
    return lookupDeferred(this.stmt, outVerifyNo, this.openSealer);
  }

  /** Dead letters without their payload (no personal data), in seq order after `afterSeq`. */
  deadLetters(afterSeq = 0, limit = 1000): DeadLetter[] {
    return deadLetterPage(this.stmt, afterSeq, limit);
  }

  /** Dead letters per return code, with the oldest death time. */
  deadSummary(): { byCode: Record<string, number>; oldestDiedAt: string | null } {
    return deadLetterSummary(this.db);
  }

  /** The decrypted payload of one dead letter (needs the card). */
  deadPayload(seq: number): Promise<Pick<StoredOutboxEntry, 'biz' | 'termId' | 'scannerId'> | null> {
    return deadLetterPayload(this.stmt, seq, this.openSealer);
  }

  /**
   * Move dead letters back to the tail of the outbox (same sealed payload, same out_verify_no, attempts
   * reset). Refuses with 3003 when the outbox has no room for them. Returns how many moved.
   */
  retryDead(seqs: number[]): number {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const moved = retryDeadLetters(this.db, this.stmt, this.file, this.limits.maxRecords, seqs);
    this.refreshCache();
    if (moved > 0) this.emit('append', moved);
    return moved;
  }

  /**
   * Delete dead letters for good (an operator's decision: they will never be delivered). Returns how many
   * were removed; seqs that are not dead letters are ignored.
   */
  dropDead(seqs: number[]): number {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    let dropped = 0;
    try {
      this.db.transaction(() => {
        for (const seq of seqs) dropped += this.stmt.delDead!.run(seq).changes;
      })();
    } catch (err) {
      throw mapSqliteError(err, this.file, 'dropping dead letters');
    }
    this.refreshCache();
    return dropped;
  }

  /** Whether `seq` is a dead letter now. */
  isDead(seq: number): boolean {
    return this.stmt.deadRow!.get(seq) !== undefined;
  }

  /**
   * The acknowledged high-water mark: the highest seq ever acknowledged to a caller (delivered records
   * leave the table, their seq stays in sqlite_sequence). The audit head records it, so an outbox that
   * is emptied, deleted or replaced by an older copy is found at the next start.
   */
  highWater(): number {
    return this.acknowledgedHigh;
  }

  /** A small sealed document kept in `meta` (the audit head's outside anchor); resolves once durable. */
  readMeta(key: string): string | undefined {
    if (this.closed) return undefined;
    const v = this.db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get(`doc:${key}`) as Buffer | string | undefined;
    return v === undefined ? undefined : String(v);
  }

  writeMeta(key: string, text: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    try {
      this.db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)').run(`doc:${key}`, text);
    } catch (err) {
      return Promise.reject(mapSqliteError(err, this.file, 'writing meta'));
    }
    return new Promise<void>((resolve, reject) => this.wal.whenDurable(resolve, reject));
  }

  /** SQLite's own check of the file (tests, tools). */
  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  /** Commits everything queued, then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    // let in-flight seals finish so their appends commit
    for (let i = 0; i < 1000 && this.queue.some((o) => o.op === 'insert' && !o.ready); i++) {
      await new Promise((r) => setImmediate(r));
    }
    this.flush();
    this.closed = true;
    for (const o of this.queue.splice(0)) o.reject(new EhcError('8007', 'outbox: closed before this record was stored'));
    await this.wal.close();
    try {
      this.db.close();
    } catch (err) {
      throw mapSqliteError(err, this.file, 'closing');
    }
  }
}
