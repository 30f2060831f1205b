/**
 * The outbox on SQLite (better-sqlite3): WAL and group commit — every append, ack and answer queued
 * within one event-loop turn goes into ONE transaction, and all of them resolve only once it is on
 * disk. Durability is that of synchronous=FULL (the WAL is fsync'd after each commit) but the fsync
 * does not run on the event loop: SQLite runs with synchronous=NORMAL (in WAL mode: no sync at
 * commit; WAL synced before checkpoints, header synced on reuse) and the outbox fsyncs the -wal file
 * itself in libuv's threadpool, resolving a batch only after an fsync that began after its commit.
 * One fsync covers every commit made while the previous one ran. (better-sqlite3 is synchronous, so
 * with FULL each commit blocked the whole process for one fsync, ~2–5 ms on the disks measured.) Records are sealed (SM4-CBC + HMAC-SM3, keys on the card)
 * before they are queued; only seq, kind, method, out_verify_no and times are stored in clear.
 *
 * Bounds: maxRecords, maxBytes, maxAgeHours (oldest record). Policy when full: `reject-new` — append
 * throws EhcError 3003 and nothing already stored is ever dropped. A full disk is EhcError 8007.
 * Depth, bytes and dead counts are kept by triggers, so they stay right when the tools (another
 * process) move dead letters.
 */
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fsync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CardPrimitives } from '../crypto/card.ts';
import { EhcError, asEhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import { createFileDurablySync, fsyncDirSync, makeDirDurablySync } from '../platform/durable-write.ts';
import type {
  DeferredAnswer,
  DeliveryOutcome,
  Outbox,
  OutboxEntry,
  OutboxLookup,
  OutboxStats,
  StoredOutboxEntry,
} from './outbox.ts';
import { RecordSealer, type SealKeys, type Sealed } from './seal.ts';

export interface OutboxLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeHours: number;
}

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

export interface DeadLetter {
  seq: number;
  kind: string;
  method: string;
  outVerifyNo: string;
  createdAt: string;
  attempts: number;
  retCode: string;
  reason: string;
  diedAt: string;
}

interface Row {
  seq: number;
  kind: string;
  method: string;
  out_verify_no: string;
  created_at: number;
  attempts: number;
  iv: Buffer;
  body: Buffer;
  mac: Buffer;
}

interface DeadRow extends Row {
  ret_code: string;
  reason: string;
  died_at: number;
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

interface AnswerRow {
  outVerifyNo: string;
  retCode: string;
  answeredAt: number;
  sealed: Sealed;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('usage','deferred')),
  method TEXT NOT NULL,
  out_verify_no TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  iv BLOB NOT NULL, body BLOB NOT NULL, mac BLOB NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_deferred ON outbox(out_verify_no) WHERE kind = 'deferred';
CREATE TABLE IF NOT EXISTS dead (
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL, method TEXT NOT NULL, out_verify_no TEXT NOT NULL,
  created_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
  iv BLOB NOT NULL, body BLOB NOT NULL, mac BLOB NOT NULL, bytes INTEGER NOT NULL,
  ret_code TEXT NOT NULL, reason TEXT NOT NULL, died_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
  out_verify_no TEXT PRIMARY KEY,
  ret_code TEXT NOT NULL,
  answered_at INTEGER NOT NULL,
  iv BLOB NOT NULL, body BLOB NOT NULL, mac BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_time ON answers(answered_at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  depth INTEGER NOT NULL, bytes INTEGER NOT NULL, dead INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (id, depth, bytes, dead) VALUES (1, 0, 0, 0);
CREATE TRIGGER IF NOT EXISTS outbox_ins AFTER INSERT ON outbox BEGIN
  UPDATE counters SET depth = depth + 1, bytes = bytes + NEW.bytes WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS outbox_del AFTER DELETE ON outbox BEGIN
  UPDATE counters SET depth = depth - 1, bytes = bytes - OLD.bytes WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dead_ins AFTER INSERT ON dead BEGIN
  UPDATE counters SET dead = dead + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS dead_del AFTER DELETE ON dead BEGIN
  UPDATE counters SET dead = dead - 1 WHERE id = 1; END;
`;

/** clear columns bound into each record's MAC */
function recordAad(kind: string, method: string, outVerifyNo: string, createdAt: number): Buffer {
  return Buffer.from(`outbox\n${kind}\n${method}\n${outVerifyNo}\n${createdAt}`, 'utf8');
}
function answerAad(outVerifyNo: string, retCode: string, answeredAt: number): Buffer {
  return Buffer.from(`answer\n${outVerifyNo}\n${retCode}\n${answeredAt}`, 'utf8');
}

/** SQLite errors → spec codes, once, here. */
export function mapSqliteError(err: unknown, file: string, doing: string): EhcError {
  if (err instanceof EhcError) return err;
  const code = (err as { code?: string }).code ?? '';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return new EhcError('8007', `outbox: disk full while ${doing} (${file}, ${code}); nothing of this batch was stored`, { cause: err });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new EhcError('3003', `outbox: database busy while ${doing} (${code})`, { cause: err });
  }
  return asEhcError(err, '8007', `outbox: database error while ${doing} (${code || 'unknown'})`);
}

export class SqliteOutbox extends EventEmitter implements Outbox {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly sealer?: RecordSealer;
  private readonly log?: Logger;
  private readonly limits: OutboxLimits;
  private readonly maxBatch: number;
  private readonly answerRetentionMs: number;
  private queue: Op[] = [];
  private scheduled = false;
  private nextTicket = 0;
  /** the -wal file, fsync'd off the event loop after commits (undefined: SQLite syncs itself) */
  private walFd?: number;
  private syncing = false;
  /** batches committed but not yet covered by a completed fsync */
  private awaitingSync: Array<{ ok: () => void; fail: (e: EhcError) => void }> = [];
  private closed = false;
  /** counters as of the last commit, plus what is queued but not committed */
  private cache = { depth: 0, bytes: 0, oldest: null as number | null };
  private queuedInserts = 0;
  private queuedBytes = 0;
  private sinceAnswerPrune = 0;
  readonly counters = { appended: 0, rejectedFull: 0, commits: 0, delivered: 0, dead: 0, writeErrors: 0 };
  /** highest seq whose append was acknowledged (durable), or assigned before this open */
  private acknowledgedHigh = 0;
  private readonly stmt: Record<string, Database.Statement>;

  private constructor(options: SqliteOutboxOptions) {
    super();
    this.file = path.resolve(options.file);
    this.limits = options.limits;
    this.log = options.log;
    this.maxBatch = options.maxBatch ?? 2048;
    this.answerRetentionMs = (options.answerRetentionHours ?? 24 * 7) * 3600_000;
    if (options.card) this.sealer = new RecordSealer(options.card, options.keys);
    const dir = path.dirname(this.file);
    try {
      makeDirDurablySync(dir);
      // created here first, 0600 (SQLite gives its -wal and -shm files the database's mode)
      if (!existsSync(this.file)) createFileDurablySync(this.file, '', { mode: 0o600 });
      this.db = new Database(this.file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
      try {
        this.walFd = openSync(`${this.file}-wal`, 'r');
      } catch {
        this.db.pragma('synchronous = FULL'); // no -wal to sync ourselves: let SQLite sync at commit
      }
    } catch (err) {
      throw new EhcError('8005', `outbox: cannot open ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    // the database and its -wal file are new directory entries: make them durable too
    try {
      fsyncDirSync(dir);
    } catch {
      /* directory fsync is not supported everywhere (it is on Linux ext4/xfs/tmpfs) */
    }
    const db = this.db;
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO outbox (kind, method, out_verify_no, created_at, iv, body, mac, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      del: db.prepare('DELETE FROM outbox WHERE seq = ?'),
      toDead: db.prepare(
        `INSERT OR REPLACE INTO dead (seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes, ret_code, reason, died_at)
         SELECT seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes, ?, ?, ? FROM outbox WHERE seq = ?`,
      ),
      attempt: db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?'),
      answer: db.prepare('INSERT OR REPLACE INTO answers (out_verify_no, ret_code, answered_at, iv, body, mac) VALUES (?, ?, ?, ?, ?, ?)'),
      pruneAnswers: db.prepare('DELETE FROM answers WHERE answered_at < ?'),
      counters: db.prepare('SELECT depth, bytes, dead FROM counters WHERE id = 1'),
      oldest: db.prepare('SELECT created_at FROM outbox ORDER BY seq LIMIT 1').pluck(),
      peek: db.prepare('SELECT seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
      pending: db.prepare("SELECT seq, created_at, attempts FROM outbox WHERE kind = 'deferred' AND out_verify_no = ? ORDER BY seq LIMIT 1"),
      getAnswer: db.prepare('SELECT out_verify_no, ret_code, answered_at, iv, body, mac FROM answers WHERE out_verify_no = ?'),
      deadPage: db.prepare(
        'SELECT seq, kind, method, out_verify_no, created_at, attempts, ret_code, reason, died_at FROM dead WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      deadRow: db.prepare('SELECT * FROM dead WHERE seq = ?'),
      retry: db.prepare(
        `INSERT INTO outbox (kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes)
         SELECT kind, method, out_verify_no, created_at, 0, iv, body, mac, bytes FROM dead WHERE seq = ?`,
      ),
      delDead: db.prepare('DELETE FROM dead WHERE seq = ?'),
    };
    this.refreshCache();
    this.acknowledgedHigh = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").pluck().get() as number | undefined) ?? 0;
  }

  static open(options: SqliteOutboxOptions): SqliteOutbox {
    return new SqliteOutbox(options);
  }

  private refreshCache(): void {
    const c = this.stmt.counters!.get() as { depth: number; bytes: number };
    this.cache.depth = c.depth;
    this.cache.bytes = c.bytes;
    this.cache.oldest = (this.stmt.oldest!.get() as number | undefined) ?? null;
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
  /**
   * The first use checks that the card's keys are the ones this outbox was written with (a sealed
   * check value in `meta`), so a wrong key index fails loudly with 8008 instead of turning every
   * record into an integrity failure.
   */
  private checkKeys(): Promise<void> {
    this.keyChecked ??= (async () => {
      const sealer = this.needSealer();
      if (this.closed) throw new EhcError('8007', 'outbox: closed');
      const aad = Buffer.from('outbox key check', 'utf8');
      const row = this.db.prepare("SELECT v FROM meta WHERE k = 'keycheck'").pluck().get() as Buffer | undefined;
      if (!row) {
        const sealed = await sealer.seal(aad, aad);
        const v = Buffer.concat([sealed.iv, sealed.mac, sealed.body]);
        this.db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('keycheck', ?)").run(v);
        return;
      }
      try {
        const plain = await sealer.open({ iv: row.subarray(0, 16), mac: row.subarray(16, 48), body: row.subarray(48) }, aad);
        if (!plain.equals(aad)) throw new Error('check value differs');
      } catch (err) {
        throw new EhcError('8008', `outbox: the crypto card's storage/MAC keys are not the ones ${this.file} was written with (${(err as Error).message})`, { cause: err });
      }
    })();
    this.keyChecked.catch(() => (this.keyChecked = undefined));
    return this.keyChecked;
  }

  private fullReason(extraBytes = 0, now = Date.now()): string | undefined {
    const { maxRecords, maxBytes, maxAgeHours } = this.limits;
    if (this.cache.depth + this.queuedInserts + 1 > maxRecords) return `maxRecords (${maxRecords} records)`;
    if (this.cache.bytes + this.queuedBytes + extraBytes > maxBytes) return `maxBytes (${maxBytes} bytes)`;
    if (this.cache.oldest !== null && now - this.cache.oldest > maxAgeHours * 3600_000) {
      return `maxAgeHours (oldest record older than ${maxAgeHours} h)`;
    }
    return undefined;
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
    return new EhcError('3003', `outbox full: ${reason} reached; new records are refused until replay drains it (outbox.whenFull = reject-new)`);
  }

  async peek(limit: number, afterSeq = 0): Promise<StoredOutboxEntry[]> {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const sealer = this.needSealer();
    await this.checkKeys();
    const rows = this.stmt.peek!.all(afterSeq, limit) as Row[];
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
    let answerRow: AnswerRow | undefined;
    if (answer) {
      const sealer = this.needSealer();
      const answeredAt = Date.parse(answer.answeredAt) || Date.now();
      const plain = Buffer.from(JSON.stringify({ retMsg: answer.retMsg, identity: answer.identity }), 'utf8');
      const outVerifyNo = answer.outVerifyNo;
      if (!outVerifyNo) throw new EhcError('9001', 'outbox: an answer needs outVerifyNo');
      const sealed = await sealer.seal(plain, answerAad(outVerifyNo, answer.retCode, answeredAt));
      answerRow = { outVerifyNo, retCode: answer.retCode, answeredAt, sealed };
    }
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
            const info = this.stmt.insert!.run(r.kind, r.method, r.outVerifyNo, r.createdAt, r.sealed.iv, r.sealed.body, r.sealed.mac, r.bytes);
            results[i] = Number(info.lastInsertRowid);
          } else if (o.op === 'ack') {
            if (o.outcome.status === 'dead') this.stmt.toDead!.run(o.outcome.retCode, o.outcome.reason, now, o.seq);
            results[i] = this.stmt.del!.run(o.seq).changes;
            if (o.answer) {
              const a = o.answer;
              this.stmt.answer!.run(a.outVerifyNo, a.retCode, a.answeredAt, a.sealed.iv, a.sealed.body, a.sealed.mac);
              this.sinceAnswerPrune++;
            }
          } else {
            this.stmt.attempt!.run(o.seq);
          }
        });
        if (this.sinceAnswerPrune >= 1000) {
          this.stmt.pruneAnswers!.run(now - this.answerRetentionMs);
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
    this.whenDurable(
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

  /** Settle after an fsync of the WAL that started after this commit (or at once when SQLite synced). */
  private whenDurable(ok: () => void, fail: (e: EhcError) => void): void {
    if (this.walFd === undefined) return ok();
    this.awaitingSync.push({ ok, fail });
    this.syncWal();
  }

  private syncWal(): void {
    if (this.syncing || this.awaitingSync.length === 0 || this.walFd === undefined) return;
    this.syncing = true;
    const covered = this.awaitingSync.splice(0);
    fsync(this.walFd, (err) => {
      this.syncing = false;
      if (err) {
        this.counters.writeErrors++;
        const e = new EhcError('8007', `outbox: fsync of ${this.file}-wal failed (${err.code ?? err.message}); ${covered.length} batch(es) not acknowledged`, { cause: err });
        this.log?.error('outbox fsync failed', { code: err.code, batches: covered.length });
        covered.forEach((c) => c.fail(e));
      } else {
        covered.forEach((c) => c.ok());
      }
      this.syncWal(); // commits made meanwhile
    });
  }

  stats(): OutboxStats {
    const c = this.closed ? { depth: this.cache.depth, bytes: this.cache.bytes, dead: 0 } : (this.stmt.counters!.get() as { depth: number; bytes: number; dead: number });
    const oldest = this.closed ? this.cache.oldest : ((this.stmt.oldest!.get() as number | undefined) ?? null);
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
  async lookup(outVerifyNo: string): Promise<OutboxLookup | null> {
    const p = this.stmt.pending!.get(outVerifyNo) as { seq: number; created_at: number; attempts: number } | undefined;
    if (p) return { state: 'pending', seq: p.seq, createdAt: new Date(p.created_at).toISOString(), attempts: p.attempts };
    const a = this.stmt.getAnswer!.get(outVerifyNo) as
      | { out_verify_no: string; ret_code: string; answered_at: number; iv: Buffer; body: Buffer; mac: Buffer }
      | undefined;
    if (!a) return null;
    await this.checkKeys();
    const plain = await this.needSealer().open(a, answerAad(a.out_verify_no, a.ret_code, a.answered_at));
    const { retMsg, identity } = JSON.parse(plain.toString('utf8'));
    return { state: 'answered', outVerifyNo, retCode: a.ret_code, retMsg, ...(identity ? { identity } : {}), answeredAt: new Date(a.answered_at).toISOString() };
  }

  /** Dead letters without their payload (no personal data), in seq order after `afterSeq`. */
  deadLetters(afterSeq = 0, limit = 1000): DeadLetter[] {
    const rows = this.stmt.deadPage!.all(afterSeq, limit) as Omit<DeadRow, 'iv' | 'body' | 'mac'>[];
    return rows.map((r) => ({
      seq: r.seq,
      kind: r.kind,
      method: r.method,
      outVerifyNo: r.out_verify_no,
      createdAt: new Date(r.created_at).toISOString(),
      attempts: r.attempts,
      retCode: r.ret_code,
      reason: r.reason,
      diedAt: new Date(r.died_at).toISOString(),
    }));
  }

  /** Dead letters per return code, with the oldest death time. */
  deadSummary(): { byCode: Record<string, number>; oldestDiedAt: string | null } {
    const rows = this.db.prepare('SELECT ret_code AS code, count(*) AS n FROM dead GROUP BY ret_code ORDER BY ret_code').all() as { code: string; n: number }[];
    const oldest = this.db.prepare('SELECT min(died_at) FROM dead').pluck().get() as number | null;
    return { byCode: Object.fromEntries(rows.map((r) => [r.code, r.n])), oldestDiedAt: oldest === null ? null : new Date(oldest).toISOString() };
  }

  /** The decrypted payload of one dead letter (needs the card). */
  async deadPayload(seq: number): Promise<Pick<StoredOutboxEntry, 'biz' | 'termId' | 'scannerId'> | null> {
    const r = this.stmt.deadRow!.get(seq) as DeadRow | undefined;
    if (!r) return null;
    await this.checkKeys();
    const plain = await this.needSealer().open(r, recordAad(r.kind, r.method, r.out_verify_no, r.created_at));
    return JSON.parse(plain.toString('utf8'));
  }

  /**
   * Move dead letters back to the tail of the outbox (same sealed payload, same out_verify_no, attempts
   * reset). Refuses with 3003 when the outbox has no room for them. Returns how many moved.
   */
  retryDead(seqs: number[]): number {
    if (this.closed) throw new EhcError('8007', 'outbox: closed');
    const c = this.stmt.counters!.get() as { depth: number };
    if (c.depth + seqs.length > this.limits.maxRecords) {
      throw new EhcError('3003', `outbox full: retrying ${seqs.length} dead letters would pass maxRecords (${this.limits.maxRecords})`);
    }
    let moved = 0;
    try {
      this.db.transaction(() => {
        for (const seq of seqs) {
          if (this.stmt.retry!.run(seq).changes > 0) {
            this.stmt.delDead!.run(seq);
            moved++;
          }
        }
      })();
    } catch (err) {
      throw mapSqliteError(err, this.file, 'retrying dead letters');
    }
    this.refreshCache();
    if (moved > 0) this.emit('append', moved);
    return moved;
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
    return new Promise<void>((resolve, reject) => this.whenDurable(resolve, reject));
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
    while (this.syncing || this.awaitingSync.length > 0) await new Promise((r) => setTimeout(r, 1));
    if (this.walFd !== undefined) closeSync(this.walFd);
    try {
      this.db.close();
    } catch (err) {
      throw mapSqliteError(err, this.file, 'closing');
    }
  }
}
