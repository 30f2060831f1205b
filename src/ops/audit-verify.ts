/**
 * verify-audit: checks an audit folder (src/ops/audit.ts) from its sealed anchor (or genesis) to its
 * sealed head with the card's MAC key, one day file at a time, and names the first broken record:
 * edited (MAC differs), deleted (seq gap), reordered (seq out of place), malformed, chain (prev differs),
 * truncated (head names a later seq), anchor (anchor/head forged). Safe on a live folder: the head is read
 * first and an unterminated newest line (a write in progress) is not a record.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyIndex } from '../crypto/card.ts';
import { GENESIS, listAuditFiles, macOf, openSealed, splitLine, type AnchorDoc, type AuditMacCard, type HeadDoc } from './audit.ts';

export type AuditProblem = 'edited' | 'deleted' | 'reordered' | 'malformed' | 'chain' | 'truncated' | 'anchor';

export interface AuditBreak {
  problem: AuditProblem;
  file: string;
  /** 1-based line in `file` (0 for head/anchor problems) */
  line: number;
  seq?: number;
  message: string;
}

export interface AuditVerifyReport {
  ok: boolean;
  dir: string;
  files: number;
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** the newest file ends in an unterminated line (write in progress or crash): ignored */
  unterminatedTail?: boolean;
  broken?: AuditBreak;
  /** signed `audit.recovered` records: what power cuts lost (never acknowledged writes) */
  powerLosses: Array<{ seq: number; time: string; lost?: { from: number; to: number }; message: string }>;
  /** signed `audit.integrity` records, and whether an `audit.integrity-ack` record followed them */
  alarms: Array<{ seq: number; time: string; problem: string; message: string; missing?: { from: number; to: number }; acknowledged: boolean }>;
}

export interface VerifyProgress {
  file: string;
  fileIndex: number;
  files: number;
  records: number;
}

interface Parsed {
  line: number;
  seq: number;
  prev: string;
  body: string;
  mac: string;
  action?: unknown;
  time?: unknown;
  detail?: unknown;
}

type Range = { from: number; to: number };
function rangeOf(v: unknown): Range | undefined {
  const r = v as Range | undefined;
  return r && Number.isInteger(r.from) && Number.isInteger(r.to) ? r : undefined;
}

/** The seq range a signed recovery or integrity record says is missing before it. */
function explainedGap(r: Parsed): Range | undefined {
  const d = r.detail as { lost?: unknown; missing?: unknown } | undefined;
  if (r.action === 'audit.recovered') return rangeOf(d?.lost);
  if (r.action === 'audit.integrity') return rangeOf(d?.missing);
  return undefined;
}

/**
 * Check a chain from its anchor (or genesis) to its head; stop at the first broken record and name it.
 * Reads one day file at a time.
 */
export async function verifyAuditChain(
  dir: string,
  card: AuditMacCard,
  macKey: KeyIndex,
  options: { onProgress?: (p: VerifyProgress) => void } = {},
): Promise<AuditVerifyReport> {
  // the head first: a running appliance only moves it forward after the records it names are on disk
  const head = await openSealed<HeadDoc>(card, macKey, path.join(dir, 'head.json'));
  const files = await listAuditFiles(dir);
  const report: AuditVerifyReport = { ok: true, dir, files: files.length, records: 0, firstSeq: null, lastSeq: null, powerLosses: [], alarms: [] };
  const fail = (b: AuditBreak): AuditVerifyReport => ({ ...report, ok: false, broken: b });
  let expectedSeq = 1;
  let expectedPrev = GENESIS;
  const anchor = await openSealed<AnchorDoc>(card, macKey, path.join(dir, 'anchor.json'));
  if (anchor) {
    if (!anchor.valid) return fail({ problem: 'anchor', file: 'anchor.json', line: 0, message: 'anchor.json fails its MAC (edited or replaced)' });
    expectedSeq = anchor.doc.firstSeq;
    expectedPrev = anchor.doc.prev;
  }
  for (const [fi, f] of files.entries()) {
    const text = await readFile(path.join(dir, f.name), 'utf8');
    const raw = text.split('\n');
    const torn = raw[raw.length - 1] !== '';
    raw.pop();
    if (torn && fi === files.length - 1) {
      // an unterminated last line of the newest day: a write in progress, or a crash (cut at next open);
      // never acknowledged, so not part of the chain
      report.unterminatedTail = true;
    } else if (torn) {
      return fail({ problem: 'malformed', file: f.name, line: raw.length + 1, message: `${f.name}:${raw.length + 1}: unterminated line in an older day file` });
    }
    const recs: Array<Parsed | { line: number; bad: string }> = raw.map((line, i) => {
      const parts = splitLine(line);
      if (!parts) return { line: i + 1, bad: 'not an audit record (no MAC)' };
      try {
        const body = JSON.parse(parts.body) as { seq?: unknown; prev?: unknown; action?: unknown; time?: unknown; detail?: unknown };
        if (typeof body.seq !== 'number' || typeof body.prev !== 'string') return { line: i + 1, bad: 'record lacks seq/prev' };
        return { line: i + 1, seq: body.seq, prev: body.prev, body: parts.body, mac: parts.mac, action: body.action, time: body.time, detail: body.detail };
      } catch {
        return { line: i + 1, bad: 'not valid JSON' };
      }
    });
    for (const [ri, r] of recs.entries()) {
      if ('bad' in r) return fail({ problem: 'malformed', file: f.name, line: r.line, message: `${f.name}:${r.line}: ${r.bad}` });
      const where = `${f.name}:${r.line}`;
      if ((await macOf(card, macKey, r.body)) !== r.mac) {
        return fail({ problem: 'edited', file: f.name, line: r.line, seq: r.seq, message: `record seq ${r.seq} at ${where} was altered: its HMAC-SM3 does not match` });
      }
      const gap = explainedGap(r);
      if (r.seq !== expectedSeq && gap && gap.from === expectedSeq && gap.to === r.seq - 1 && r.prev === expectedPrev) {
        // a gap the appliance explained at start, in a record only the card's key could sign: accepted, reported
        expectedSeq = r.seq;
      }
      if (r.action === 'audit.recovered') {
        const lost = rangeOf((r.detail as { lost?: unknown } | undefined)?.lost);
        const at = String(r.time);
        report.powerLosses.push({
          seq: r.seq,
          time: at,
          ...(lost ? { lost } : {}),
          message: lost ? `power loss before ${at}: seq ${lost.from === lost.to ? lost.from : `${lost.from}–${lost.to}`} not written (recovered at seq ${r.seq})` : `power loss before ${at}: an unfinished write cut (recovered at seq ${r.seq}), no seq lost`,
        });
      } else if (r.action === 'audit.integrity') {
        const d = (r.detail ?? {}) as { problem?: unknown; message?: unknown };
        report.alarms.push({ seq: r.seq, time: String(r.time), problem: String(d.problem), message: String(d.message), ...(gap ? { missing: gap } : {}), acknowledged: false });
      } else if (r.action === 'audit.integrity-ack') {
        const acked = new Set(((r.detail as { alarms?: unknown } | undefined)?.alarms as number[] | undefined) ?? []);
        for (const a of report.alarms) if (acked.has(a.seq)) a.acknowledged = true;
      }
      if (r.seq !== expectedSeq) {
        const later = recs.slice(ri + 1).some((x) => 'seq' in x && x.seq === expectedSeq);
        if (r.seq > expectedSeq && !later) {
          const gap = r.seq - expectedSeq === 1 ? `seq ${expectedSeq} is` : `seq ${expectedSeq}..${r.seq - 1} are`;
          return fail({ problem: 'deleted', file: f.name, line: r.line, seq: expectedSeq, message: `record ${gap} missing (deleted) before seq ${r.seq} at ${where}` });
        }
        return fail({ problem: 'reordered', file: f.name, line: r.line, seq: r.seq, message: `record seq ${r.seq} at ${where} is out of order: seq ${expectedSeq} was expected there` });
      }
      if (r.prev !== expectedPrev) {
        return fail({ problem: 'chain', file: f.name, line: r.line, seq: r.seq, message: `record seq ${r.seq} at ${where} does not link to the record before it (prev MAC differs)` });
      }
      report.firstSeq ??= r.seq;
      report.lastSeq = r.seq;
      report.records++;
      expectedSeq = r.seq + 1;
      expectedPrev = r.mac;
    }
    options.onProgress?.({ file: f.name, fileIndex: fi + 1, files: files.length, records: report.records });
  }
  if (head) {
    if (!head.valid) return fail({ problem: 'anchor', file: 'head.json', line: 0, message: 'head.json fails its MAC (edited or replaced)' });
    const last = report.lastSeq ?? expectedSeq - 1;
    if (head.doc.seq > last) {
      return fail({
        problem: 'truncated',
        file: files[files.length - 1]?.name ?? '(none)',
        line: 0,
        seq: last + 1,
        message: `records after seq ${last} are missing (deleted from the end): head.json says the chain reached seq ${head.doc.seq}`,
      });
    }
  }
  return report;
}
