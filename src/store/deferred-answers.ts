/**
 * Answers to deferred verifications, kept sealed beside the outbox for GET /v1/verify/{out_verify_no}
 * (stored in the same transaction as the record's ack; pruned after the retention time), and the
 * lookup that shows a deferred request as still queued or answered.
 */
import { EhcError } from '../errors.ts';
import type { OutboxStatements } from './outbox-db.ts';
import type { DeferredAnswer, OutboxLookup } from './outbox.ts';
import type { RecordSealer, Sealed } from './seal.ts';

/** An answer ready to be written with its ack. */
export interface AnswerRow {
  outVerifyNo: string;
  retCode: string;
  answeredAt: number;
  sealed: Sealed;
}

/** clear columns bound into each answer's MAC */
function answerAad(outVerifyNo: string, retCode: string, answeredAt: number): Buffer {
  return Buffer.from(`answer\n${outVerifyNo}\n${retCode}\n${answeredAt}`, 'utf8');
}

export async function sealAnswer(sealer: RecordSealer, answer: DeferredAnswer): Promise<AnswerRow> {
  const answeredAt = Date.parse(answer.answeredAt) || Date.now();
  const plain = Buffer.from(JSON.stringify({ retMsg: answer.retMsg, identity: answer.identity }), 'utf8');
  const outVerifyNo = answer.outVerifyNo;
  if (!outVerifyNo) throw new EhcError('9001', 'outbox: an answer needs outVerifyNo');
  const sealed = await sealer.seal(plain, answerAad(outVerifyNo, answer.retCode, answeredAt));
  return { outVerifyNo, retCode: answer.retCode, answeredAt, sealed };
}

/** Inside the commit's transaction. */
export function writeAnswer(stmt: OutboxStatements, a: AnswerRow): void {
  stmt.answer.run(a.outVerifyNo, a.retCode, a.answeredAt, a.sealed.iv, a.sealed.body, a.sealed.mac);
}

/**
 * Still queued (pending), answered, or unknown (null). `open` gives the sealer once the keys are
 * checked; it is only needed for an answer.
 */
export async function lookupDeferred(stmt: OutboxStatements, outVerifyNo: string, open: () => Promise<RecordSealer>): Promise<OutboxLookup | null> {
  const p = stmt.pending.get(outVerifyNo) as { seq: number; created_at: number; attempts: number } | undefined;
  if (p) return { state: 'pending', seq: p.seq, createdAt: new Date(p.created_at).toISOString(), attempts: p.attempts };
  const a = stmt.getAnswer.get(outVerifyNo) as { out_verify_no: string; ret_code: string; answered_at: number; iv: Buffer; body: Buffer; mac: Buffer } | undefined;
  if (!a) return null;
  const sealer = await open();
  const plain = await sealer.open(a, answerAad(a.out_verify_no, a.ret_code, a.answered_at));
  const { retMsg, identity } = JSON.parse(plain.toString('utf8'));
  return { state: 'answered', outVerifyNo, retCode: a.ret_code, retMsg, ...(identity ? { identity } : {}), answeredAt: new Date(a.answered_at).toISOString() };
}
