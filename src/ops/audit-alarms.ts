/**
 * The audit trail's integrity alarms: what recovery found (a cut chain, a missing head or folder) and
 * what was raised later (the outbox behind its high-water mark), each with the seq of its signed
 * `audit.integrity` record, shown by status until an admin acknowledges them. They are carried in the
 * head across restarts, and so is the outbox's high-water mark as a floor that only the acknowledgement
 * lowers (an outbox found behind it stays an alarm).
 */
import type { HeadDoc } from './audit-record.ts';
import type { IntegrityAlarm } from './audit-recover.ts';

/** An integrity alarm as status shows it until an admin acknowledges it. */
export interface AuditAlarm extends IntegrityAlarm {
  /** seq of the signed `audit.integrity` record */
  seq?: number;
  raisedAt: string;
}

export class IntegrityAlarms {
  private alarms: AuditAlarm[] = [];
  private outboxFloor = 0;

  /** At recovery: the alarms and floor the last head carried, then what recovery found (raised `now`). */
  carry(head: HeadDoc | undefined, found: IntegrityAlarm[], now: string): void {
    this.outboxFloor = head?.outboxSeq ?? 0;
    const carried = (head?.alarms ?? []).map((a) => ({ ...a, problem: a.problem as IntegrityAlarm['problem'] }));
    this.alarms = [...carried, ...found.map((a) => ({ ...a, raisedAt: now }))];
  }

  /** A found alarm's signed record is durable: it takes that record's seq. */
  signed(problem: IntegrityAlarm['problem'], seq: number): void {
    const alarm = this.alarms.find((a) => a.problem === problem && a.seq === undefined);
    if (alarm) alarm.seq = seq;
  }

  raised(a: IntegrityAlarm, seq: number, time: string): void {
    this.alarms.push({ ...a, seq, raisedAt: time });
  }

  /** The detail of the acknowledgement record; undefined when there is nothing to acknowledge. */
  ackDetail(): { alarms: number[]; problems: string[] } | undefined {
    if (this.alarms.length === 0) return undefined;
    return { alarms: this.alarms.map((a) => a.seq).filter((s): s is number => s !== undefined), problems: this.alarms.map((a) => a.problem) };
  }

  /** The acknowledgement is signed: status is clean again, and the floor is gone. */
  acknowledged(): void {
    this.alarms = [];
    this.outboxFloor = 0;
  }

  list(): AuditAlarm[] {
    return this.alarms.map((a) => ({ ...a }));
  }

  /** What the head records: the outbox's mark (never below the floor) and the open alarms. */
  headFields(outboxSeq: number | undefined): Pick<HeadDoc, 'outboxSeq' | 'alarms'> {
    const out: Pick<HeadDoc, 'outboxSeq' | 'alarms'> = {};
    const mark = Math.max(outboxSeq ?? 0, this.outboxFloor);
    if (mark > 0) out.outboxSeq = mark;
    if (this.alarms.length) out.alarms = this.alarms.map((a) => ({ seq: a.seq, problem: a.problem, message: a.message, raisedAt: a.raisedAt, ...(a.outbox ? { outbox: true } : {}) }));
    return out;
  }
}
