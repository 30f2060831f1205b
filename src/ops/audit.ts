/**
 * Tamper-evident audit trail (seed 000 §三(四)3: integrity-protected, kept ≥ 12 months; seed 002: HMAC-SM3).
 *
 * Every record is one JSON line in `<stateDir>/audit/audit-YYYYMMDD.jsonl` (local day). A record carries
 * `seq` (1, 2, 3 … without gaps over the appliance's life) and `prev` (the previous record's MAC), and
 * ends with `mac` = HMAC-SM3(card key `mac`, `ehc-edge audit v1\n` ‖ the line's bytes before `,"mac":…`
 * closed by `}`). So an edit breaks the record's MAC, a deletion leaves a gap in `seq`, a reordering puts
 * a `seq` out of place, and nobody without the card key can repair the chain. The chain continues across days, files and restarts.
 *
 * Appends are group-committed: records queued while a write is on disk go out in the next single
 * write + fsync; `append` resolves only when its record is durable.
 *
 * Retention: files older than `retainDays` are deleted; when the folder exceeds `maxBytes` the oldest
 * days are deleted even if younger (a full disk would stop verifications) — loudly: an error log and an
 * `audit.pruned` record. Before deleting, `anchor.json` (MACed) records where the kept chain starts so
 * verification still proves nothing was removed from the start. `head.json` (MACed, refreshed at most once a
 * second and on close, durably through src/platform/durable-write.ts) records the last durable seq so a
 * cut tail is detected too.
 *
 * The verifier is src/ops/audit-verify.ts.
 *
 * Personal data: subjects are masked here (name 2nd char `*`, ID first 4 + last 4, phone 3 + 4), and
 * `detail` passes through maskForLog (maskDeep plus other spellings of identity fields) — the trail never
 * holds a clear identity.
 */
import { mkdir, open, readdir, readFile, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { CardPrimitives, KeyIndex } from '../crypto/card.ts';
import { maskCode, maskIdNo, maskName, maskPhone, maskText } from '../platform/mask.ts';
import { fsyncDirSync as fsyncDir, replaceFileDurably } from '../platform/durable-write.ts';
import { maskForLog, type Logger } from '../platform/log.ts';

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

/** yyyyMMdd of a time in the appliance's local time zone (the national statistics use the same). */
export function localDay(t: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.getFullYear()}${p(t.getMonth() + 1)}${p(t.getDate())}`;
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
function bodyText(seq: number, prev: string, e: AuditEvent, time: Date): string {
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

const MAC_DOMAIN_BYTES = Buffer.byteLength(MAC_DOMAIN);

/** The bytes a record's MAC covers: the domain, then the body text. */
function macInput(text: string): Buffer {
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

async function sealDoc<T>(card: AuditMacCard, key: KeyIndex, doc: T): Promise<string> {
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

export interface AuditOptions {
  /** the audit folder, normally `<stateDir>/audit` */
  dir: string;
  card: AuditMacCard;
  /** key index of the MAC key (config card.keys.mac) */
  macKey: KeyIndex;
  retainDays?: number;
  maxBytes?: number;
  logger?: Logger;
  clock?: () => Date;
}

export interface AuditState {
  dir: string;
  lastSeq: number;
  lastTime: string | null;
  files: number;
  bytes: number;
  /** appends that failed (card or disk error) since start */
  failures: number;
  lastError: string | null;
}

/** An event waiting for its place in the chain (seq, prev, MAC), in arrival order. */
interface Queued {
  event: AuditEvent;
  /** called with the stored line once it is durable; record() passes none (nobody reads it back) */
  done?: (line: string) => void;
  fail: (e: unknown) => void;
}

/** A chained record waiting for its write + fsync. */
interface Pending {
  line: string;
  /** the line's UTF-8 bytes with its newline, in pieces */
  bytes: Buffer[];
  day: string;
  seq: number;
  mac: string;
  time: string;
  kind: AuditKind;
  done?: (line: string) => void;
  fail: (e: unknown) => void;
}

export class AuditTrail {
  private seq = 0;
  private prev = GENESIS;
  private lastTime: string | null = null;
  private durableSeq = 0;
  private durableMac = GENESIS;
  private durableTime: string | null = null;
  /** events not yet chained; one loop (`chaining`) gives them seq and MAC in arrival order */
  private queued: Queued[] = [];
  private chaining: Promise<void> = Promise.resolve();
  private chainBusy = false;
  private pending: Pending[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private flushBusy = false;
  private handle: FileHandle | null = null;
  private handleDay = '';
  /** newest day file in use: records never go into an older one */
  private minDay = '';
  private bytes = 0;
  private files = 0;
  private failures = 0;
  private lastError: string | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private headChain: Promise<void> = Promise.resolve();
  private closed = false;
  /** last durable verification records' lines (already masked), newest last, for the status page */
  private readonly recent: string[] = [];
  private readonly retainDays: number;
  private readonly maxBytes: number;
  private readonly clock: () => Date;

  private constructor(private readonly opts: AuditOptions) {
    this.retainDays = opts.retainDays ?? 400;
    this.maxBytes = opts.maxBytes ?? 2_147_483_648;
    this.clock = opts.clock ?? (() => new Date());
  }

  /**
   * Open (creating) the audit folder and continue the chain from its last record. One writer only: a
   * second process (a tool while the appliance runs) would fork the chain, so `writer.lock` (O_EXCL,
   * holding the pid) refuses it; a lock left by a dead process is taken over.
   */
  static async open(opts: AuditOptions): Promise<AuditTrail> {
    const trail = new AuditTrail(opts);
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await trail.lock();
    try {
      await trail.recover();
    } catch (err) {
      await trail.unlock();
      throw err;
    }
    await trail.prune();
    return trail;
  }

  private get lockFile(): string {
    return path.join(this.opts.dir, 'writer.lock');
  }

  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number((await readFile(this.lockFile, 'utf8').catch(() => '')).trim());
        let alive = false;
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          try {
            process.kill(pid, 0);
            alive = true;
          } catch (e) {
            alive = (e as NodeJS.ErrnoException).code === 'EPERM';
          }
        }
        if (alive || pid === process.pid) throw new Error(`audit trail ${this.opts.dir} is in use by process ${pid}: one writer only`);
        await unlink(this.lockFile).catch(() => {});
      }
    }
    throw new Error(`audit trail ${this.opts.dir}: cannot take writer.lock`);
  }

  private async unlock(): Promise<void> {
    await unlink(this.lockFile).catch(() => {});
  }

  private async recover(): Promise<void> {
    const files = await listAuditFiles(this.opts.dir);
    this.files = files.length;
    this.minDay = files[files.length - 1]?.day ?? '';
    this.bytes = files.reduce((n, f) => n + f.bytes, 0);
    const notes: AuditEvent[] = [];
    for (let i = files.length - 1; i >= 0; i--) {
      const f = files[i]!;
      const file = path.join(this.opts.dir, f.name);
      const text = await readFile(file, 'utf8');
      if (text.length === 0) continue;
      let kept = text;
      if (!text.endsWith('\n')) {
        // A torn write from a crash: that batch was never acknowledged. Cut it and say so in the trail.
        const cut = text.lastIndexOf('\n') + 1;
        await truncate(file, Buffer.byteLength(text.slice(0, cut)));
        kept = text.slice(0, cut);
        this.bytes -= Buffer.byteLength(text.slice(cut));
        notes.push({ kind: 'audit', action: 'audit.torn-tail-removed', detail: { file: f.name, bytes: Buffer.byteLength(text.slice(cut)) } });
        this.opts.logger?.warn('audit: removed a torn last line left by a crash', { file: f.name });
        if (kept.length === 0) continue;
      }
      const lines = kept.trimEnd().split('\n');
      let found = false;
      for (let li = lines.length - 1; li >= 0 && !found; li--) {
        const parts = splitLine(lines[li]!);
        let body: { seq?: unknown; time?: unknown } | undefined;
        try {
          body = parts ? (JSON.parse(parts.body) as { seq?: unknown; time?: unknown }) : undefined;
        } catch {
          body = undefined;
        }
        if (!parts || !body || typeof body.seq !== 'number') {
          notes.push({ kind: 'security', action: 'audit.record-unreadable', detail: { file: f.name, line: li + 1 } });
          this.opts.logger?.error('audit: a last record is unreadable; the chain continues after the last readable one (verify-audit will name it)', { file: f.name, line: li + 1 });
          continue;
        }
        found = true;
        this.seq = body.seq;
        this.prev = parts.mac;
        this.lastTime = typeof body.time === 'string' ? body.time : null;
        if ((await macOf(this.opts.card, this.opts.macKey, parts.body)) !== parts.mac) {
          notes.push({ kind: 'security', action: 'audit.tail-mac-mismatch', detail: { file: f.name, seq: body.seq } });
          this.opts.logger?.error('audit: last record fails its MAC (edited, or another key): verify-audit will name it', { file: f.name, seq: body.seq });
        }
      }
      if (found) break;
    }
    this.durableSeq = this.seq;
    this.durableMac = this.prev;
    this.durableTime = this.lastTime;
    if (this.seq === 0) {
      const anchor = await openSealed<AnchorDoc>(this.opts.card, this.opts.macKey, path.join(this.opts.dir, 'anchor.json'));
      if (anchor?.valid) {
        this.seq = anchor.doc.firstSeq - 1;
        this.prev = anchor.doc.prev;
      }
    }
    for (const note of notes) void this.append(note).catch(() => {});
  }

  /** Append one record; resolves with it once it is fsync'd. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new Error('audit trail is closed'));
    return new Promise<AuditRecord>((resolve, reject) => this.enqueue({ event, done: (line) => resolve(JSON.parse(line) as AuditRecord), fail: reject }));
  }

  /** Append without waiting; a failure is logged (and counted in state()), never thrown. */
  record(event: AuditEvent): void {
    if (this.closed) return void this.opts.logger?.error('audit append failed', { err: new Error('audit trail is closed'), action: event.action });
    this.enqueue({ event, fail: (err) => this.opts.logger?.error('audit append failed', { err: err as Error, action: event.action }) });
  }

  private enqueue(q: Queued): void {
    this.queued.push(q);
    if (!this.chainBusy) {
      this.chainBusy = true;
      this.chaining = this.chainLoop();
    }
  }

  /**
   * Gives queued events their seq, prev and MAC strictly one after another (the card call is async,
   * and each MAC covers the previous one), then hands them to the writer.
   */
  private async chainLoop(): Promise<void> {
    // the busy flag is cleared in this function, right after the last look at the queue finds it
    // empty: an event queued after that starts a new loop (an await in between would strand it)
    while (this.queued.length > 0) {
      const items = this.queued.splice(0);
      for (const { event, done, fail } of items) {
        const seq = this.seq + 1;
        let time: Date;
        let body: string;
        let input: Buffer;
        let mac: string;
        try {
          // nothing in this loop may throw past here: the busy flag below must always be cleared
          time = event.time ?? this.clock();
          body = bodyText(seq, this.prev, event, time);
          input = macInput(body);
          mac = (await this.opts.card.hmacSm3(this.opts.macKey, input)).toString('hex');
        } catch (err) {
          this.noteFailure(err);
          fail(err);
          continue;
        }
        this.seq = seq;
        this.prev = mac;
        const iso = time.toISOString();
        this.lastTime = iso;
        const tail = `,"mac":"${mac}"}`;
        const line = body.slice(0, -1) + tail;
        // the stored bytes: the body as already encoded for the MAC, without its closing brace, then the MAC
        const bytes = [input.subarray(MAC_DOMAIN_BYTES, input.length - 1), Buffer.from(tail + '\n', 'latin1')];
        // never write into an older day's file, even if the clock steps back
        const today = this.dayOf(time);
        const day = today > this.minDay ? today : this.minDay;
        this.minDay = day;
        this.pending.push({ line, bytes, day, seq, mac, time: iso, kind: event.kind, done, fail });
      }
      this.kick();
    }
    this.chainBusy = false;
  }

  /** localDay() of a time, remembering the current day's bounds so most records skip the formatting */
  private dayCache = { from: 0, to: -1, day: '' };
  private dayOf(t: Date): string {
    const ms = t.getTime();
    const c = this.dayCache;
    if (ms >= c.from && ms < c.to) return c.day;
    const from = new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime();
    const to = new Date(t.getFullYear(), t.getMonth(), t.getDate() + 1).getTime();
    this.dayCache = { from, to, day: localDay(t) };
    return this.dayCache.day;
  }

  private noteFailure(err: unknown): void {
    this.failures++;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  private kick(): void {
    if (this.flushBusy) return;
    this.flushBusy = true;
    this.flushing = this.flushLoop();
  }

  /** Writes pending records, a day's group at a time (write + fsync); clears flushBusy as chainLoop does. */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      let i = 0;
      while (i < batch.length) {
        const day = batch[i]!.day;
        let j = i;
        while (j < batch.length && batch[j]!.day === day) j++;
        const group = batch.slice(i, j);
        try {
          const rotated = await this.ensureHandle(day);
          const buf = Buffer.concat(group.flatMap((p) => p.bytes));
          await this.handle!.write(buf);
          await this.handle!.sync();
          this.bytes += buf.length;
          const last = group[group.length - 1]!;
          this.durableSeq = last.seq;
          this.durableMac = last.mac;
          this.durableTime = last.time;
          for (const p of group) {
            if (p.kind === 'verify') {
              this.recent.push(p.line);
              if (this.recent.length > 50) this.recent.shift();
            }
            p.done?.(p.line);
          }
          if (rotated || this.bytes > this.maxBytes) await this.prune();
        } catch (err) {
          this.noteFailure(err);
          this.opts.logger?.error('audit write failed', { err: err as Error });
          for (const p of group) p.fail(err);
        }
        i = j;
      }
      this.scheduleHead();
    }
    this.flushBusy = false;
  }

  private async ensureHandle(day: string): Promise<boolean> {
    if (this.handle && this.handleDay === day) return false;
    if (this.handle) await this.handle.close();
    const file = path.join(this.opts.dir, auditFileName(day));
    let existed = true;
    try {
      await stat(file);
    } catch {
      existed = false;
    }
    this.handle = await open(file, 'a', 0o600);
    this.handleDay = day;
    if (!existed) {
      fsyncDir(this.opts.dir);
      this.files++;
      return true;
    }
    return false;
  }

  private scheduleHead(): void {
    if (this.headTimer || this.closed) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      void this.writeHead().catch((err) => this.opts.logger?.warn('audit head not written', { err: err as Error }));
    }, 1000);
    this.headTimer.unref();
  }

  /** Head writes run one after another (a timer's write and close()'s must not share the temp file). */
  private writeHead(): Promise<void> {
    const run = async () => {
      if (this.durableSeq === 0) return;
      const doc: HeadDoc = { seq: this.durableSeq, mac: this.durableMac, time: this.durableTime ?? this.clock().toISOString() };
      await replaceFileDurably(path.join(this.opts.dir, 'head.json'), await sealDoc(this.opts.card, this.opts.macKey, doc));
    };
    const next = this.headChain.then(run, run);
    this.headChain = next.catch(() => {});
    return next;
  }

  /** Delete days past retention, then the oldest days while over the size cap (never today's file). */
  async prune(): Promise<string[]> {
    const files = await listAuditFiles(this.opts.dir);
    const now = this.clock();
    const oldest = localDay(new Date(now.getTime() - this.retainDays * 86_400_000));
    let total = files.reduce((n, f) => n + f.bytes, 0);
    const remove: Array<{ name: string; reason: 'age' | 'cap' }> = [];
    let k = 0;
    while (k < files.length - 1 && files[k]!.day < oldest) {
      remove.push({ name: files[k]!.name, reason: 'age' });
      total -= files[k]!.bytes;
      k++;
    }
    while (k < files.length - 1 && total > this.maxBytes) {
      remove.push({ name: files[k]!.name, reason: 'cap' });
      total -= files[k]!.bytes;
      k++;
    }
    if (remove.length === 0) return [];
    const keep = files[k]!;
    const first = (await readFile(path.join(this.opts.dir, keep.name), 'utf8')).split('\n', 1)[0] ?? '';
    const parts = splitLine(first);
    if (!parts) throw new Error(`audit: cannot prune, first record of ${keep.name} unreadable`);
    const head = JSON.parse(parts.body) as { seq: number; prev: string };
    const anchor: AnchorDoc = { firstSeq: head.seq, prev: head.prev, prunedAt: now.toISOString(), removed: remove.map((r) => r.name) };
    await replaceFileDurably(path.join(this.opts.dir, 'anchor.json'), await sealDoc(this.opts.card, this.opts.macKey, anchor));
    for (const r of remove) await unlink(path.join(this.opts.dir, r.name));
    fsyncDir(this.opts.dir);
    this.files -= remove.length;
    this.bytes = total;
    const capped = remove.filter((r) => r.reason === 'cap').map((r) => r.name);
    if (capped.length) {
      this.opts.logger?.error('audit: size cap reached, deleted days younger than the retention period', { files: capped, maxBytes: this.maxBytes });
    }
    this.record({ kind: 'audit', action: 'audit.pruned', detail: { removed: remove, firstSeq: head.seq } });
    return remove.map((r) => r.name);
  }

  /** Wait until everything appended so far is on disk. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.chainBusy) await this.chaining;
      else if (this.flushBusy) await this.flushing;
      else return;
    }
  }

  /** The last `n` durable verification records (masked), newest first. */
  recentVerifications(n = 20): AuditRecord[] {
    return this.recent.slice(-n).reverse().map((line) => JSON.parse(line) as AuditRecord);
  }

  state(): AuditState {
    return {
      dir: this.opts.dir,
      lastSeq: this.seq,
      lastTime: this.lastTime,
      files: this.files,
      bytes: this.bytes,
      failures: this.failures,
      lastError: this.lastError,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = null;
    await this.writeHead();
    if (this.handle) await this.handle.close();
    this.handle = null;
    await this.unlock();
  }
}
