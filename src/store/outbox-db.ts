/**
 * The outbox's SQLite file: its tables (with the triggers that keep depth, bytes and dead counts right
 * even when the tools, another process, move dead letters), opening it (0600, WAL, synchronous=NORMAL,
 * durable directory entries), its prepared statements, and the one mapping of SQLite errors to spec codes.
 * Only seq, kind, method, out_verify_no and times are stored in clear; the rest is sealed (seal.ts).
 */
import { existsSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EhcError, asEhcError } from '../errors.ts';
import { createFileDurablySync, fsyncDirSync, makeDirDurablySync } from '../platform/durable-write.ts';

/** One queued record as stored (sealed columns iv, body, mac). */
export interface Row {
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

export interface DeadRow extends Row {
  ret_code: string;
  reason: string;
  died_at: number;
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
export function recordAad(kind: string, method: string, outVerifyNo: string, createdAt: number): Buffer {
  return Buffer.from(`outbox\n${kind}\n${method}\n${outVerifyNo}\n${createdAt}`, 'utf8');
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

export interface OutboxDb {
  db: Database.Database;
  /** the -wal file, for the outbox to fsync off the event loop (undefined: SQLite syncs at commit itself) */
  walFd?: number;
}

/**
 * Opens (creating with its folder) the database: WAL with synchronous=NORMAL, the -wal file kept open
 * for wal-sync.ts; without a -wal file to sync, synchronous=FULL. 8005 when it cannot be opened.
 */
export function openOutboxDb(file: string): OutboxDb {
  const dir = path.dirname(file);
  let db: Database.Database;
  let walFd: number | undefined;
  try {
    makeDirDurablySync(dir);
    // created here first, 0600 (SQLite gives its -wal and -shm files the database's mode)
    if (!existsSync(file)) createFileDurablySync(file, '', { mode: 0o600 });
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    try {
      walFd = openSync(`${file}-wal`, 'r');
    } catch {
      db.pragma('synchronous = FULL'); // no -wal to sync ourselves: let SQLite sync at commit
    }
  } catch (err) {
    throw new EhcError('8005', `outbox: cannot open ${file}: ${(err as Error).message}`, { cause: err });
  }
  // the database and its -wal file are new directory entries: make them durable too
  try {
    fsyncDirSync(dir);
  } catch {
    /* directory fsync is not supported everywhere (it is on Linux ext4/xfs/tmpfs) */
  }
  return { db, walFd };
}

/** The statements the outbox runs, prepared once. */
export function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare('INSERT INTO outbox (kind, method, out_verify_no, created_at, iv, body, mac, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
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
    deadPage: db.prepare('SELECT seq, kind, method, out_verify_no, created_at, attempts, ret_code, reason, died_at FROM dead WHERE seq > ? ORDER BY seq LIMIT ?'),
    deadRow: db.prepare('SELECT * FROM dead WHERE seq = ?'),
    retry: db.prepare(
      `INSERT INTO outbox (kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes)
       SELECT kind, method, out_verify_no, created_at, 0, iv, body, mac, bytes FROM dead WHERE seq = ?`,
    ),
    delDead: db.prepare('DELETE FROM dead WHERE seq = ?'),
  };
}

export type OutboxStatements = ReturnType<typeof prepareStatements>;
