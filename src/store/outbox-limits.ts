/**
 * The outbox's bounds: maxRecords, maxBytes, maxAgeHours (oldest record). Policy when full:
 * `reject-new` — append throws EhcError 3003 and nothing already stored is ever dropped.
 */
import { EhcError } from '../errors.ts';

export interface OutboxLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeHours: number;
}

/** What the outbox holds (as of the last commit, plus what is queued and not yet committed). */
export interface OutboxFill {
  depth: number;
  bytes: number;
  /** creation time of the oldest record (ms), null when empty */
  oldest: number | null;
}

/** Which bound one more record of `extraBytes` would pass, or undefined when it fits. */
export function fullReason(limits: OutboxLimits, fill: OutboxFill, extraBytes = 0, now = Date.now()): string | undefined {
  const { maxRecords, maxBytes, maxAgeHours } = limits;
  if (fill.depth + 1 > maxRecords) return `maxRecords (${maxRecords} records)`;
  if (fill.bytes + extraBytes > maxBytes) return `maxBytes (${maxBytes} bytes)`;
  if (fill.oldest !== null && now - fill.oldest > maxAgeHours * 3600_000) return `maxAgeHours (oldest record older than ${maxAgeHours} h)`;
  return undefined;
}

export function fullError(reason: string): EhcError {
  return new EhcError('3003', `outbox full: ${reason} reached; new records are refused until replay drains it (outbox.whenFull = reject-new)`);
}
