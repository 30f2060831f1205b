/**
 * Dead letters: records the home system refused for good (or that could not be opened at rest), kept
 * sealed with the reason. Listed without payload (no personal data), summarised per return code, opened
 * one at a time with the card, and moved back to the tail of the outbox by the operator's tools.
 */
import type Database from 'better-sqlite3';
import { EhcError } from '../errors.ts';
import { mapSqliteError, recordAad, type DeadRow, type OutboxStatements } from './outbox-db.ts';
import type { StoredOutboxEntry } from './outbox.ts';
import type { RecordSealer } from './seal.ts';

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

export function deadLetterPage(stmt: OutboxStatements, afterSeq: number, limit: number): DeadLetter[] {
  const rows = stmt.deadPage.all(afterSeq, limit) as Omit<DeadRow, 'iv' | 'body' | 'mac'>[];
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

export function deadLetterSummary(db: Database.Database): { byCode: Record<string, number>; oldestDiedAt: string | null } {
  const rows = db.prepare('SELECT ret_code AS code, count(*) AS n FROM dead GROUP BY ret_code ORDER BY ret_code').all() as { code: string; n: number }[];
  const oldest = db.prepare('SELECT min(died_at) FROM dead').pluck().get() as number | null;
  return { byCode: Object.fromEntries(rows.map((r) => [r.code, r.n])), oldestDiedAt: oldest === null ? null : new Date(oldest).toISOString() };
}

export async function deadLetterPayload(stmt: OutboxStatements, seq: number, open: () => Promise<RecordSealer>): Promise<Pick<StoredOutboxEntry, 'biz' | 'termId' | 'scannerId'> | null> {
  const r = stmt.deadRow.get(seq) as DeadRow | undefined;
  if (!r) return null;
  const sealer = await open();
  const plain = await sealer.open(r, recordAad(r.kind, r.method, r.out_verify_no, r.created_at));
  return JSON.parse(plain.toString('utf8'));
}

/** Moves dead letters back (same sealed payload and out_verify_no, attempts reset); 3003 when they do not fit. */
export function retryDeadLetters(db: Database.Database, stmt: OutboxStatements, file: string, maxRecords: number, seqs: number[]): number {
  const c = stmt.counters.get() as { depth: number };
  if (c.depth + seqs.length > maxRecords) {
    throw new EhcError('3003', `outbox full: retrying ${seqs.length} dead letters would pass maxRecords (${maxRecords})`);
  }
  let moved = 0;
  try {
    db.transaction(() => {
      for (const seq of seqs) {
        if (stmt.retry.run(seq).changes > 0) {
          stmt.delDead.run(seq);
          moved++;
        }
      }
    })();
  } catch (err) {
    throw mapSqliteError(err, file, 'retrying dead letters');
  }
  return moved;
}
