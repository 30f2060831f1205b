/**
 * The audit record's format (one job): fields, masking of subjects, the exact MACed text, the line shape
 * `…,"mac":"<64 hex>"}`, the sealed small documents (head.json, anchor.json) and the day files' names.
 * The writer is src/ops/audit.ts, start-up recovery src/ops/audit-recover.ts, the checker audit-verify.ts.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CardPrimitives, KeyIndex } from '../crypto/card.ts';
import { maskCode, maskIdNo, maskName, maskPhone, maskText } from '../platform/mask.ts';
import { maskForLog } from '../platform/log.ts';
import { cstDay } from '../platform/time.ts';

export type AuditKind = 'verify' | 'config' | 'key' | 'admin' | 'security' | 'audit';

/** Who a record is about. Give clear values: they are masked before anything is stored. */
export interface AuditSubject {
  name?: string;
  idType?: string;
  idNo?: string;
  phone?: string;
  ehealthCode?: string;
  ehealthCardId?: string;
}

export interface AuditEvent {
  kind: AuditKind;
  /** what happened: `verify`, `auth.failed`, `admin.locked`, `config.reload`, `key.import`, `digest.rejected` … */
  action: string;
  /** verification route (decided_by: local, upstream, cross-domain, offline-local, deferred) or HTTP path */
  route?: string;
  /** 识读终端 term_id */
  terminal?: string;
  scanner?: string;
  /** operator id (not a person's name) */
  operator?: string;
  /** client address of an HTTP caller */
  client?: string;
  /** spec return code (src/errors.ts) */
  retCode?: string;
  subject?: AuditSubject;
  detail?: Record<string, unknown>;
  time?: Date;
}

export interface MaskedSubject {
  name?: string;
  id_type?: string;
  id_no?: string;
  phone?: string;
  ehealth_code?: string;
  ehealth_card_id?: string;
}

export interface AuditRecord {
  seq: number;
  time: string;
  kind: AuditKind;
  action: string;
  route?: string;
  terminal?: string;
  scanner?: string;
  operator?: string;
  client?: string;
  ret_code?: string;
  subject?: MaskedSubject;
  detail?: unknown;
  prev: string;
  mac: string;
}

/** The MAC key's only use here: HMAC-SM3 by key index, on the crypto card. */
export type AuditMacCard = Pick<CardPrimitives, 'hmacSm3'>;

export const GENESIS = '0'.repeat(64);
const FILE_RE = /^audit-(\d{8})\.jsonl$/;
const MAC_SUFFIX = /,"mac":"([0-9a-f]{64})"\}$/;

export function auditFileName(day: string): string {
  return `audit-${day}.jsonl`;
}

/**
 * yyyyMMdd of the China Standard Time day of an instant (src/platform/time.ts cstDay): the one day rule
 * of audit day files, usage statistics and history, whatever TZ the process runs under. (Before, this
 * was the process's local day: UTC on a default Debian install. Day files named so still verify: names
 * only order the files, the chain is in the records, and a CST day is never earlier than the UTC day of
 * the same instant, so the writer never goes back to an earlier-named file.)
 */
export function localDay(t: Date): string {
  return cstDay(t);
}

export function maskSubject(s: AuditSubject): MaskedSubject {
  const out: MaskedSubject = {};
  if (s.name) out.name = maskName(s.name);
  if (s.idType) out.id_type = s.idType;
  if (s.idNo) out.id_no = maskIdNo(s.idNo);
  if (s.phone) out.phone = maskPhone(s.phone);
  if (s.ehealthCode) out.ehealth_code = maskCode(s.ehealthCode);
  if (s.ehealthCardId) out.ehealth_card_id = maskCode(s.ehealthCardId);
  return out;
}

/** The record body (everything but `mac`) as the exact JSON text that is MACed. Field order is fixed. */
export function bodyText(seq: number, prev: string, e: AuditEvent, time: Date): string {
  const body: Record<string, unknown> = { seq, time: time.toISOString(), kind: e.kind, action: maskText(e.action) };
  if (e.route !== undefined) body.route = maskText(e.route);
  if (e.terminal !== undefined) body.terminal = maskText(e.terminal);
  if (e.scanner !== undefined) body.scanner = maskText(e.scanner);
  if (e.operator !== undefined) body.operator = maskText(e.operator);
  if (e.client !== undefined) body.client = maskText(e.client);
  if (e.retCode !== undefined) body.ret_code = e.retCode;
  if (e.subject) body.subject = maskSubject(e.subject);
  if (e.detail !== undefined) body.detail = maskForLog(e.detail);
  body.prev = prev;
  return JSON.stringify(body);
}

/** Domain separation: the card's `mac` key also protects outbox records; audit MACs can never be swapped with those. */
const MAC_DOMAIN = 'ehc-edge audit v1\n';

export const MAC_DOMAIN_BYTES = Buffer.byteLength(MAC_DOMAIN);

/** The bytes a record's MAC covers: the domain, then the body text. */
export function macInput(text: string): Buffer {
  return Buffer.from(MAC_DOMAIN + text, 'utf8');
}

export async function macOf(card: AuditMacCard, key: KeyIndex, text: string): Promise<string> {
  return (await card.hmacSm3(key, macInput(text))).toString('hex');
}

/** Split a stored line into the MACed body text and the stored MAC; undefined when it is not that shape. */
export function splitLine(line: string): { body: string; mac: string } | undefined {
  const m = MAC_SUFFIX.exec(line);
  if (!m) return undefined;
  return { body: line.slice(0, m.index) + '}', mac: m[1]! };
}

/** A small MACed JSON document (anchor.json, head.json). */
interface Sealed<T> {
  doc: T;
  mac: string;
}

export async function sealDoc<T>(card: AuditMacCard, key: KeyIndex, doc: T): Promise<string> {
  const text = JSON.stringify(doc);
  return JSON.stringify({ doc, mac: await macOf(card, key, text) } satisfies Sealed<T>) + '\n';
}

export async function openSealed<T>(card: AuditMacCard, key: KeyIndex, file: string): Promise<{ doc: T; valid: boolean } | undefined> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const sealed = JSON.parse(raw) as Sealed<T>;
    return { doc: sealed.doc, valid: (await macOf(card, key, JSON.stringify(sealed.doc))) === sealed.mac };
  } catch {
    return { doc: {} as T, valid: false };
  }
}

export interface AnchorDoc {
  /** first seq still kept */
  firstSeq: number;
  /** MAC of the record before it (deleted) */
  prev: string;
  prunedAt: string;
  removed: string[];
}

export interface HeadDoc {
  seq: number;
  mac: string;
  time: string;
  /** written by a clean close: nothing may follow this record until the next start */
  closed?: boolean;
  /** the outbox's acknowledged high-water mark (highest durable seq) when this head was written */
  outboxSeq?: number;
  /** integrity alarms not yet acknowledged: they stay in status across restarts */
  alarms?: Array<{ seq?: number; problem: string; message: string; raisedAt: string; outbox?: boolean }>;
}

export async function listAuditFiles(dir: string): Promise<Array<{ name: string; day: string; bytes: number }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Array<{ name: string; day: string; bytes: number }> = [];
  for (const name of names.sort()) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    out.push({ name, day: m[1]!, bytes: (await stat(path.join(dir, name))).size });
  }
  return out;
}

