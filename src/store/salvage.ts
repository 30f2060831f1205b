/**
 * Outbox salvage (one job): a damaged page in `outbox.sqlite` (`database disk image is malformed`) stops
 * replay at that record for good. Salvage copies every row that can still be read — outbox records,
 * dead letters, answers, meta — into a fresh database, keeps the sealed columns byte for byte (each
 * record's MAC is checked again when replay opens it), keeps the seq counter so no seq is reused, and
 * names the records that could not be read by seq.
 *
 * Rows are read one seq at a time (a point lookup walks root → interior → leaf): a seq whose lookup
 * fails with a corruption error was on a damaged page and is LOST; one that is simply not there was
 * delivered and deleted before. The seq range looked at is 1 … the highest seq ever assigned (from
 * `sqlite_sequence`, or the largest seq readable, when that page is damaged too).
 *
 * The damaged file is kept beside the new one (`outbox.sqlite.damaged-<time>`), never deleted. Run with
 * the appliance stopped.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fsyncDirSync } from '../platform/durable-write.ts';
import { SqliteOutbox } from './sqlite-outbox.ts';

export interface SalvageReport {
  file: string;
  /** where the damaged database now is */
  damagedCopy: string;
  highestSeq: number;
  /** outbox records copied (undelivered, readable) */
  records: number;
  dead: number;
  answers: number;
  /** seq numbers on damaged pages: records that can no longer be delivered */
  lostSeqs: number[];
  /** dead letters on damaged pages */
  lostDeadSeqs: number[];
  /** `PRAGMA integrity_check` of the damaged file (first lines) */
  damage: string;
}

const CORRUPT = /SQLITE_CORRUPT|SQLITE_NOTADB|malformed|not a database/i;

function isCorrupt(err: unknown): boolean {
  return CORRUPT.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message ?? ''}`);
}

function tryGet<T>(f: () => T): { ok: true; value: T } | { ok: false; err: unknown } {
  try {
    return { ok: true, value: f() };
  } catch (err) {
    return { ok: false, err };
  }
}

/** Ranges of consecutive seqs, for a readable report: [1,2,3,7] → "1–3, 7". */
export function seqRanges(seqs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < seqs.length; ) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j++;
    out.push(i === j ? `${seqs[i]}` : `${seqs[i]}–${seqs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

export async function salvageOutbox(file: string, options: { now?: Date; onProgress?: (done: number, total: number) => void } = {}): Promise<SalvageReport> {
  const abs = path.resolve(file);
  const now = options.now ?? new Date();
  const old = new Database(abs, { readonly: true, fileMustExist: true });
  const check = tryGet(() => (old.pragma('integrity_check') as Array<{ integrity_check: string }>).slice(0, 5).map((r) => r.integrity_check).join('; '));
  const damage = check.ok ? check.value : `integrity_check failed: ${(check.err as Error).message}`;
  const seqRow = tryGet(() => old.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").pluck().get() as number | undefined);
  const maxOf = (table: string) => tryGet(() => (old.prepare(`SELECT max(seq) FROM ${table}`).pluck().get() as number | null) ?? 0);
  const highs = [seqRow.ok ? (seqRow.value ?? 0) : 0, ...['outbox', 'dead'].map((t) => maxOf(t)).map((r) => (r.ok ? r.value : 0))];
  const highestSeq = Math.max(...highs);

  const tmp = `${abs}.salvage-${process.pid}`;
  for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
  // the fresh file gets the outbox's schema (and 0600) from SqliteOutbox itself
  await SqliteOutbox.open({ file: tmp, keys: { storage: 0, mac: 0 }, limits: { maxRecords: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, maxAgeHours: 1e9 } }).close();
  const fresh = new Database(tmp);
  fresh.pragma('journal_mode = WAL');
  fresh.pragma('synchronous = FULL');
  const report: SalvageReport = { file: abs, damagedCopy: '', highestSeq, records: 0, dead: 0, answers: 0, lostSeqs: [], lostDeadSeqs: [], damage };
  const getOutbox = old.prepare('SELECT seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes FROM outbox WHERE seq = ?');
  const getDead = old.prepare('SELECT * FROM dead WHERE seq = ?');
  const putOutbox = fresh.prepare('INSERT INTO outbox (seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes) VALUES (@seq, @kind, @method, @out_verify_no, @created_at, @attempts, @iv, @body, @mac, @bytes)');
  const putDead = fresh.prepare(
    'INSERT INTO dead (seq, kind, method, out_verify_no, created_at, attempts, iv, body, mac, bytes, ret_code, reason, died_at) VALUES (@seq, @kind, @method, @out_verify_no, @created_at, @attempts, @iv, @body, @mac, @bytes, @ret_code, @reason, @died_at)',
  );
  const copy = fresh.transaction((from: number, to: number) => {
    for (let seq = from; seq <= to; seq++) {
      const r = tryGet(() => getOutbox.get(seq) as Record<string, unknown> | undefined);
      if (!r.ok) {
        if (!isCorrupt(r.err)) throw r.err;
        report.lostSeqs.push(seq);
      } else if (r.value) {
        putOutbox.run(r.value);
        report.records++;
      }
      const d = tryGet(() => getDead.get(seq) as Record<string, unknown> | undefined);
      if (!d.ok) {
        if (!isCorrupt(d.err)) throw d.err;
        report.lostDeadSeqs.push(seq);
      } else if (d.value) {
        putDead.run(d.value);
        report.dead++;
      }
    }
  });
  for (let from = 1; from <= highestSeq; from += 10_000) {
    copy(from, Math.min(highestSeq, from + 9_999));
    options.onProgress?.(Math.min(highestSeq, from + 9_999), highestSeq);
  }
  // answers and meta: by scan, as far as it reads (answers are a convenience copy of delivered results)
  const answers = tryGet(() => old.prepare('SELECT * FROM answers').all() as Record<string, unknown>[]);
  if (answers.ok) {
    const put = fresh.prepare('INSERT OR REPLACE INTO answers (out_verify_no, ret_code, answered_at, iv, body, mac) VALUES (@out_verify_no, @ret_code, @answered_at, @iv, @body, @mac)');
    fresh.transaction(() => answers.value.forEach((a) => (put.run(a), report.answers++)))();
  }
  const meta = tryGet(() => old.prepare('SELECT k, v FROM meta').all() as Array<{ k: string; v: Buffer }>);
  if (meta.ok) {
    const put = fresh.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)');
    fresh.transaction(() => meta.value.forEach((m) => put.run(m.k, m.v)))();
  }
  // no seq is ever used twice: the counter continues after the highest one the damaged file assigned
  fresh.prepare("INSERT OR REPLACE INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(highestSeq);
  fresh.prepare('UPDATE counters SET depth = (SELECT count(*) FROM outbox), bytes = (SELECT coalesce(sum(bytes), 0) FROM outbox), dead = (SELECT count(*) FROM dead) WHERE id = 1').run();
  fresh.pragma('wal_checkpoint(TRUNCATE)');
  fresh.close();
  old.close();

  const stamp = now.toISOString().replace(/[:.]/g, '');
  report.damagedCopy = `${abs}.damaged-${stamp}`;
  renameSync(abs, report.damagedCopy);
  for (const ext of ['-wal', '-shm']) if (existsSync(abs + ext)) renameSync(abs + ext, report.damagedCopy + ext);
  renameSync(tmp, abs);
  for (const ext of ['-wal', '-shm']) rmSync(tmp + ext, { force: true });
  fsyncDirSync(path.dirname(abs));
  return report;
}
