/**
 * Start-up recovery of the audit trail (one job): find where the chain stands, honestly.
 *
 * The starting point is the last durable head: `head.json` (written durably, at most 1 s behind the
 * records, never ahead of them) or the anchor kept outside the audit folder (the outbox database), the
 * later of the two. From that record to the end of the newest day file every record is checked (shape,
 * MAC, seq, prev). What a power cut can leave there — a group-commit write that never completed its
 * fsync: NUL bytes where its first half should be, the tail of a record, the records after it — is cut
 * at the first unreadable or unchained record; the cut bytes are kept beside the trail
 * (`recovered-<time>.bin`) and a signed `audit.recovered` record says which seq numbers were lost. That
 * record takes the seq after the highest one seen in the cut bytes, so verify-audit sees the gap
 * explained by a record only the card's key could have made.
 *
 * What a power cut cannot produce is an alarm (`audit.integrity`, kind security), never laundered: a chain
 * shorter than its head or its outside anchor (records deleted from the end), a head that fails its MAC
 * or names a record that is not there, a missing head while day files exist, a missing audit folder
 * while the outside anchor says records were written, records after a head written by a clean close,
 * an unreadable record before the end. The trail then continues after the head's seq (the missing seq
 * numbers stay missing, named in the alarm) from the last record that can be read.
 */
import { readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { KeyIndex } from '../crypto/card.ts';
import { createFileDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import { GENESIS, listAuditFiles, macOf, openSealed, splitLine, type AnchorDoc, type AuditEvent, type AuditMacCard, type HeadDoc } from './audit-record.ts';

export type IntegrityProblem =
  | 'truncated'
  | 'head-missing'
  | 'head-invalid'
  | 'head-mismatch'
  | 'audit-missing'
  | 'after-close'
  | 'unreadable'
  | 'outbox-behind'
  | 'outbox-missing';

export interface IntegrityAlarm {
  problem: IntegrityProblem;
  message: string;
  /** seq numbers that the chain should hold and does not */
  missing?: { from: number; to: number };
  [k: string]: unknown;
}

export interface RecoveryInput {
  dir: string;
  card: AuditMacCard;
  macKey: KeyIndex;
  /** the head as kept outside the audit folder (already checked: MAC valid), if any */
  outsideHead?: HeadDoc;
  logger?: Logger;
  clock?: () => Date;
}

export interface RecoveryResult {
  /** seq of the last record in the chain (the next record gets seq + 1) */
  seq: number;
  prev: string;
  lastTime: string | null;
  /** the head as read from head.json (valid MAC), if any: the outbox high-water mark it carries */
  head?: HeadDoc;
  files: number;
  bytes: number;
  /** records to write first, in order; each may move the seq on (a gap it explains) */
  notes: Array<{ event: AuditEvent; skipTo?: number }>;
  alarms: IntegrityAlarm[];
}

interface Line {
  text: string;
  /** byte offset of the line's start in its file */
  offset: number;
}

interface Parsed {
  seq: number;
  prev: string;
  mac: string;
  time: string | null;
}

const SEQ_ANYWHERE = /\{"seq":(\d+),"time":"([^"]*)"/g;

function splitLines(buf: Buffer): { lines: Line[]; tornAt?: number } {
  const lines: Line[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    lines.push({ text: buf.toString('utf8', start, nl), offset: start });
    start = nl + 1;
  }
  return start < buf.length ? { lines, tornAt: start } : { lines };
}

async function parseRecord(card: AuditMacCard, key: KeyIndex, text: string): Promise<Parsed | undefined> {
  const parts = splitLine(text);
  if (!parts) return undefined;
  let body: { seq?: unknown; prev?: unknown; time?: unknown };
  try {
    body = JSON.parse(parts.body) as typeof body;
  } catch {
    return undefined;
  }
  if (typeof body.seq !== 'number' || typeof body.prev !== 'string') return undefined;
  if ((await macOf(card, key, parts.body)) !== parts.mac) return undefined;
  return { seq: body.seq, prev: body.prev, mac: parts.mac, time: typeof body.time === 'string' ? body.time : null };
}

/** The seq numbers named at the start of records inside damaged bytes (NULs and torn lines skipped). */
function seqsIn(bytes: Buffer): number[] {
  const text = bytes.toString('latin1').replace(/\0+/g, '\n');
  return [...text.matchAll(SEQ_ANYWHERE)].map((m) => Number(m[1]));
}

export async function recoverChain(input: RecoveryInput): Promise<RecoveryResult> {
  const { dir, card, macKey, logger } = input;
  const clock = input.clock ?? (() => new Date());
  const files = await listAuditFiles(dir);
  const result: RecoveryResult = { seq: 0, prev: GENESIS, lastTime: null, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0), notes: [], alarms: [] };
  const alarm = (a: IntegrityAlarm) => {
    result.alarms.push(a);
    logger?.error('audit integrity alarm', { problem: a.problem, message: a.message });
  };
  const headFile = await openSealed<HeadDoc>(card, macKey, path.join(dir, 'head.json'));
  let head: HeadDoc | undefined;
  if (headFile && !headFile.valid) alarm({ problem: 'head-invalid', message: 'head.json fails its MAC (edited or replaced); the chain is checked from the outside anchor' });
  else if (headFile) head = result.head = headFile.doc;
  const anchorDoc = await openSealed<AnchorDoc>(card, macKey, path.join(dir, 'anchor.json'));
  const outside = input.outsideHead;
  const nonEmpty = files.filter((f) => f.bytes > 0);
  if (nonEmpty.length === 0) {
    if (outside && outside.seq > 0) {
      alarm({
        problem: 'audit-missing',
        message: `the audit folder holds no records, but the anchor outside it says the chain reached seq ${outside.seq} (folder deleted or emptied)`,
        missing: { from: 1, to: outside.seq },
      });
      result.notes.push({ event: integrityEvent(result.alarms[result.alarms.length - 1]!), skipTo: outside.seq });
      return result;
    }
    if (head && head.seq > 0) {
      alarm({ problem: 'truncated', message: `no records left, but head.json says the chain reached seq ${head.seq}`, missing: { from: 1, to: head.seq } });
      result.notes.push({ event: integrityEvent(result.alarms[result.alarms.length - 1]!), skipTo: head.seq });
      return result;
    }
    if (anchorDoc?.valid) {
      result.seq = anchorDoc.doc.firstSeq - 1;
      result.prev = anchorDoc.doc.prev;
    }
    return result;
  }
  if (!headFile) alarm({ problem: 'head-missing', message: 'head.json is missing although day files exist (deleted)' });
  // the durable start point: the later of head.json and the outside anchor
  let start: HeadDoc | undefined = head && head.seq > 0 ? head : undefined;
  if (outside && outside.seq > 0 && (!start || outside.seq > start.seq)) start = outside;

  // read the newest day files back to the one holding the start record
  const loaded: Array<{ name: string; buf: Buffer; lines: Line[]; tornAt?: number }> = [];
  let startAt: { file: number; line: number } | undefined;
  for (let i = nonEmpty.length - 1; i >= 0; i--) {
    const buf = await readFile(path.join(dir, nonEmpty[i]!.name));
    const { lines, tornAt } = splitLines(buf);
    loaded.unshift({ name: nonEmpty[i]!.name, buf, lines, tornAt });
    if (!start) break; // no start point: check the newest day file from its first record
    const needle = `{"seq":${start.seq},`;
    const li = lines.findIndex((l) => l.text.startsWith(needle));
    if (li >= 0) {
      startAt = { file: 0, line: li };
      break;
    }
    if (lines.some((l) => /^\{"seq":(\d+),/.test(l.text) && Number(/^\{"seq":(\d+),/.exec(l.text)![1]) < start!.seq)) break;
  }
  if (startAt) startAt.file = 0;

  // walk from the start record to the end, stopping at the first record that is not the next in the chain
  let expected: { seq: number; prev: string } | undefined;
  let last: Parsed | undefined;
  let cut: { file: number; offset: number } | undefined;
  let fromFile = 0;
  let fromLine = 0;
  if (startAt) {
    const startLine = loaded[startAt.file]!.lines[startAt.line]!;
    const rec = await parseRecord(card, macKey, startLine.text);
    if (!rec || rec.mac !== start!.mac) {
      alarm({ problem: 'head-mismatch', message: `the record at seq ${start!.seq} is not the one the head names (replaced or edited)`, seq: start!.seq });
    }
    fromFile = startAt.file;
    fromLine = startAt.line;
  }
  for (let fi = fromFile; fi < loaded.length && !cut; fi++) {
    const f = loaded[fi]!;
    for (let li = fi === fromFile ? fromLine : 0; li < f.lines.length; li++) {
      const line = f.lines[li]!;
      const rec = await parseRecord(card, macKey, line.text);
      const linked = rec && (!expected || (rec.seq === expected.seq && rec.prev === expected.prev));
      if (!rec || !linked) {
        cut = { file: fi, offset: line.offset };
        break;
      }
      last = rec;
      expected = { seq: rec.seq + 1, prev: rec.mac };
    }
    if (!cut && f.tornAt !== undefined) cut = { file: fi, offset: f.tornAt };
  }
  if (last) {
    result.seq = last.seq;
    result.prev = last.mac;
    result.lastTime = last.time;
  }

  if (start && (!startAt || !last || last.seq < start.seq)) {
    // the start record is gone: records were removed from the end (a power cut never does that: the head
    // is written only after its records are durable). Continue from the last record that reads.
    const tail = await lastReadable(card, macKey, loaded);
    const lastSeq = tail?.seq ?? 0;
    const src = start === head ? 'head.json' : 'the anchor outside the audit folder';
    alarm({
      problem: 'truncated',
      message: `the chain ends at seq ${lastSeq}, but ${src} says it reached seq ${start.seq}: records ${lastSeq + 1}..${start.seq} were removed`,
      missing: { from: lastSeq + 1, to: start.seq },
    });
    result.seq = tail?.seq ?? 0;
    result.prev = tail?.mac ?? GENESIS;
    result.lastTime = tail?.time ?? null;
    result.notes.push({ event: integrityEvent(result.alarms[result.alarms.length - 1]!), skipTo: start.seq });
    return finish(result, head, start);
  }

  if (cut) {
    const f = loaded[cut.file]!;
    const damaged = Buffer.concat([f.buf.subarray(cut.offset), ...loaded.slice(cut.file + 1).map((x) => x.buf)]);
    const seen = seqsIn(damaged).filter((s) => s >= (expected?.seq ?? 1));
    const lostTo = seen.length ? Math.max(...seen) : undefined;
    const lostFrom = expected?.seq ?? 1;
    const laterFiles = loaded.slice(cut.file + 1).filter((x) => x.buf.length > 0).map((x) => x.name);
    if (head?.closed && head.seq === result.seq) {
      alarm({ problem: 'after-close', message: `bytes after seq ${result.seq}, which a clean stop sealed as the last record (written while stopped)`, file: f.name });
    } else if (laterFiles.length > 0) {
      alarm({ problem: 'unreadable', message: `${f.name}: an unreadable record with later day files after it (${laterFiles.join(', ')}): not a power cut`, file: f.name });
    }
    const saved = `recovered-${clock().toISOString().replace(/[:.]/g, '')}.bin`;
    await createFileDurably(path.join(dir, saved), damaged);
    await truncate(path.join(dir, f.name), cut.offset);
    for (const later of laterFiles) await truncate(path.join(dir, later), 0);
    result.bytes -= damaged.length;
    const lost = lostTo !== undefined ? { from: lostFrom, to: lostTo } : null;
    const why = 'power loss: a write that never completed its fsync (not acknowledged)';
    logger?.warn('audit: cut an unfinished write left by a power cut', { file: f.name, offset: cut.offset, bytes: damaged.length, lostFrom: lost?.from, lostTo: lost?.to });
    result.notes.push({
      event: {
        kind: 'audit',
        action: 'audit.recovered',
        detail: { reason: why, file: f.name, offset: cut.offset, bytes: damaged.length, savedAs: saved, ...(lost ? { lost } : {}), lastGoodSeq: result.seq },
      },
      ...(lost ? { skipTo: lost.to } : {}),
    });
  }
  return finish(result, head, start);
}

function finish(result: RecoveryResult, head: HeadDoc | undefined, start: HeadDoc | undefined): RecoveryResult {
  // alarms raised before the walk (head missing/invalid, head mismatch) are written as records too, after
  // any record that explains a gap (that one must come right after the last good record)
  for (const a of result.alarms) {
    if (!result.notes.some((n) => n.event.action === 'audit.integrity' && (n.event.detail as IntegrityAlarm).problem === a.problem)) {
      result.notes.push({ event: integrityEvent(a) });
    }
  }
  void head;
  void start;
  return result;
}

export function integrityEvent(a: IntegrityAlarm): AuditEvent {
  return { kind: 'security', action: 'audit.integrity', detail: { ...a } };
}

async function lastReadable(card: AuditMacCard, key: KeyIndex, loaded: Array<{ lines: Line[] }>): Promise<Parsed | undefined> {
  for (let fi = loaded.length - 1; fi >= 0; fi--) {
    const lines = loaded[fi]!.lines;
    for (let li = lines.length - 1; li >= 0; li--) {
      const rec = await parseRecord(card, key, lines[li]!.text);
      if (rec) return rec;
    }
  }
  return undefined;
}
