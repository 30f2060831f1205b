/**
 * Province methods a card system may offer beside verify (dialects): the daily card-usage upload
 * `ehc.ehealthcode.usecarddate` (≤ 500 records a call) and the reading-terminal registration message
 * (材料一 表6.4 fields, named as 附录E read_term_list names them). Both are queued in the outbox like
 * every other message (kind `usage`), so nothing is lost while the card system is away, and both carry
 * a serial fixed from what they say — the day and terminal for a usage batch, the terminal number for
 * a registration — so a repeat after a restart or a replay is recognisable (3002 = already have it).
 *
 * The usage rows are the appliance's own usage statistics (src/ops/stats.ts, 附录E usecard_scene_list:
 * per day, org, online/offline and treatment step); the registration rows its read_term_list.
 */
import { createHash } from 'node:crypto';
import { EhcError } from '../errors.ts';
import { METHOD_REGISTER_TERMINAL, METHOD_USECARDDATE, type ProvinceBiz, type ProvinceMethod } from './upstream.ts';

export const USECARDDATE_MAX = 500;

/** One province message to queue: the part of an outbox record the province methods fill in. */
export interface ProvinceQueueEntry {
  kind: 'usage';
  method: ProvinceMethod;
  biz: ProvinceBiz;
  termId: string;
  createdAt: string; // ISO
}

/**
 * Where province messages wait for the card system: the one thing the protocol side needs of the
 * store, said here so the protocol does not import the store (the durable outbox satisfies it).
 */
export interface ProvinceQueue {
  append(entry: ProvinceQueueEntry): Promise<unknown>;
}

/** One usage row (附录E usecard_scene_list). */
export interface UsageRow {
  time_region: string; // yyyyMMdd (CST)
  org_code: string;
  online_or_offline: 'online' | 'offline';
  usecard_scene: string;
  usecard_scene_num: number;
}

/** One reading terminal (表6.4: number, factory serial, name, purpose, user org code/name, developer, access date). */
export interface TerminalRow {
  org_code: string;
  org_name: string;
  term_record: string;
  term_serial: string;
  term_name: string;
  term_useway: string;
  term_unit: string;
  term_access_time: string;
}

const DAY = /^\d{8}$/;
const tag = (text: string) => createHash('sm3').update(text).digest('hex').slice(0, 8).toUpperCase();

/** The serial of batch `index` (0-based) of a day's upload for a terminal: ≤ 32 chars, the same every time. */
export function usecarddateSerial(day: string, termId: string, index: number): string {
  return `UCD${day}${tag(termId)}${String(index + 1).padStart(3, '0')}`;
}

/**
 * A day's usage rows for one terminal → the usecarddate messages (≤ 500 rows each), in a stable
 * order so the same day gives the same batches with the same serials.
 */
export function usecarddateBatches(day: string, termId: string, rows: readonly UsageRow[], max = USECARDDATE_MAX): ProvinceBiz[] {
  if (!DAY.test(day)) throw new EhcError('9001', `usage day must be yyyyMMdd, got ${JSON.stringify(day)}`);
  if (max < 1 || max > USECARDDATE_MAX) throw new EhcError('9001', `a usecarddate call carries 1–${USECARDDATE_MAX} records`);
  const mine = rows
    .filter((r) => r.time_region === day && r.usecard_scene_num > 0)
    .map((r) => ({ ...r, usecard_scene_num: String(r.usecard_scene_num) }))
    .sort((a, b) => `${a.org_code}|${a.online_or_offline}|${a.usecard_scene}`.localeCompare(`${b.org_code}|${b.online_or_offline}|${b.usecard_scene}`));
  const count = Math.ceil(mine.length / max);
  const out: ProvinceBiz[] = [];
  for (let i = 0; i < count; i++) {
    const list = mine.slice(i * max, (i + 1) * max);
    out.push({ out_verify_no: usecarddateSerial(day, termId, i), use_date: day, term_id: termId, batch_no: String(i + 1), batch_total: String(count), record_num: String(list.length), list });
  }
  return out;
}

/** The registration message of one reading terminal; its serial follows from its number. */
export function terminalRegistration(row: TerminalRow): ProvinceBiz {
  checkTerminalRegistration({ ...row, out_verify_no: 'x' });
  return { out_verify_no: `REG${row.term_record}`.slice(0, 32), ...row };
}

/** Card-system side (simulator) and self-check: a usecarddate body as the appliance sends it. 9001 otherwise. */
export function checkUsecarddate(biz: Record<string, unknown>): void {
  if (typeof biz.use_date !== 'string' || !DAY.test(biz.use_date)) throw new EhcError('9001', 'use_date must be yyyyMMdd');
  const list = biz.list;
  if (!Array.isArray(list) || list.length === 0) throw new EhcError('9001', 'list must hold at least one record');
  if (list.length > USECARDDATE_MAX) throw new EhcError('9001', `list holds ${list.length} records; at most ${USECARDDATE_MAX} a call`);
  if (String(list.length) !== biz.record_num) throw new EhcError('9001', 'record_num differs from the list');
  for (const r of list as Record<string, unknown>[]) {
    if (r?.time_region !== biz.use_date || typeof r.usecard_scene !== 'string' || !/^\d+$/.test(String(r.usecard_scene_num))) throw new EhcError('9001', 'a usage record is malformed');
  }
}

const TERMINAL_FIELDS: (keyof TerminalRow)[] = ['org_code', 'org_name', 'term_record', 'term_serial', 'term_name', 'term_useway', 'term_unit', 'term_access_time'];

export function checkTerminalRegistration(biz: Record<string, unknown>): void {
  for (const k of TERMINAL_FIELDS) if (typeof biz[k] !== 'string') throw new EhcError('9001', `terminal registration: ${k} is required (表6.4)`);
  if (!/^[0-9]{2}[0-9]{2}[A-FX][0-9]{4}STM[A-FX][0-9]{4}$/i.test(String(biz.term_record))) throw new EhcError('9001', 'terminal registration: term_record must be a 17-character STM number (附录D)');
}

/** Queue a day's usage upload; returns the serials queued. Replays and restarts repeat the same serials (3002 = delivered). */
export async function queueUsecarddate(outbox: ProvinceQueue, day: string, termId: string, rows: readonly UsageRow[], now = new Date()): Promise<string[]> {
  const batches = usecarddateBatches(day, termId, rows);
  for (const biz of batches) await outbox.append({ kind: 'usage', method: METHOD_USECARDDATE, biz, termId, createdAt: now.toISOString() });
  return batches.map((b) => b.out_verify_no);
}

/** Queue registration messages for reading terminals; returns the serials queued. */
export async function queueTerminalRegistrations(outbox: ProvinceQueue, rows: readonly TerminalRow[], termId: string, now = new Date()): Promise<string[]> {
  const out: string[] = [];
  for (const row of rows) {
    const biz = terminalRegistration(row);
    await outbox.append({ kind: 'usage', method: METHOD_REGISTER_TERMINAL, biz, termId, createdAt: now.toISOString() });
    out.push(biz.out_verify_no);
  }
  return out;
}
