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
 * This room puts the trail together (open, append, alarms, state, close); beside it, one job each:
 *   audit-record.ts     the record format, its MAC input, sealed documents, masking, file names
 *   audit-chain.ts      seq, prev and MAC for queued events, strictly in arrival order
 *   audit-group-commit.ts  write + fsync of chained records in groups, resolved when durable, torn writes rolled back
 *   audit-alarms.ts     integrity alarms until acknowledged, and the outbox's high-water floor
 *   audit-recover.ts    recovery at open: the chain's end, cut tails, gaps → signed integrity records
 *   audit-day-files.ts  the day files: open per day, whole write + fsync, cut back after a failed write
 *   audit-head.ts       head.json and its copy outside the folder (the outbox), one at a time, timed
 *   audit-retention.ts  retention and the size cap, anchor.json before deleting
 *   audit-lock.ts       one writer (writer.lock)
 *   audit-verify.ts     the verifier (`ehc-edge verify-audit`)
 *
 * Personal data: subjects are masked here (name 2nd char `*`, ID first 4 + last 4, phone 3 + 4), and
 * `detail` passes through maskForLog (maskDeep plus other spellings of identity fields) — the trail never
 * holds a clear identity.
 */
import type { KeyIndex } from '../crypto/card.ts';
import { makeDirDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import { listAuditFiles, macOf, type AuditEvent, type AuditMacCard, type AuditRecord, type HeadDoc } from './audit-record.ts';
import { integrityEvent, recoverChain, type IntegrityAlarm } from './audit-recover.ts';
import { WriterLock } from './audit-lock.ts';
import { HeadWriter, type HeadAnchor } from './audit-head.ts';
import { pruneAuditFiles } from './audit-retention.ts';
import { AuditDayFiles } from './audit-day-files.ts';
import { GroupCommitWriter } from './audit-group-commit.ts';
import { AuditChain, type QueuedEvent } from './audit-chain.ts';
import { IntegrityAlarms, type AuditAlarm } from './audit-alarms.ts';

export * from './audit-record.ts';
export type { IntegrityAlarm, IntegrityProblem } from './audit-recover.ts';
export type { AuditAlarm } from './audit-alarms.ts';

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
  /** where the head is kept outside the audit folder (the outbox database): sealed head text */
  anchor?: HeadAnchor;
  /** the outbox's acknowledged high-water mark, recorded in each head */
  outboxSeq?: () => number | undefined;
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
  /** false while the last write failed (disk full, I/O): identity answers are refused under audit.onFailure = refuse */
  writable?: boolean;
  /** integrity alarms not yet acknowledged (`ehc-edge verify-audit --ack`) */
  alarms?: AuditAlarm[];
  /** prunes (retention, size cap) that failed since start — at open or after a write; logged, the trail goes on */
  pruneFailures?: number;
  lastPruneError?: string | null;
}

const PROBE = 'ehc-edge audit probe';

export class AuditTrail {
  private readonly dayFiles: AuditDayFiles;
  private readonly writer: GroupCommitWriter;
  private readonly chain: AuditChain;
  private readonly head: HeadWriter;
  private readonly lock: WriterLock;
  private readonly alarms = new IntegrityAlarms();
  private lastHead?: HeadDoc;
  private bytes = 0;
  private files = 0;
  private failures = 0;
  private lastError: string | null = null;
  private pruneFailures = 0;
  private lastPruneError: string | null = null;
  /** set while the card could not MAC at open: the first append after it can runs recovery first */
  private deferredRecovery: Error | null = null;
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
    this.head = new HeadWriter({ dir: opts.dir, card: opts.card, macKey: opts.macKey, anchor: opts.anchor, logger: opts.logger, doc: (closed) => this.headDoc(closed), written: (doc) => void (this.lastHead = doc) });
    this.lock = new WriterLock(opts.dir);
    this.dayFiles = new AuditDayFiles(opts.dir);
    const failed = (err: unknown) => this.noteFailure(err);
    this.writer = new GroupCommitWriter(this.dayFiles, {
      created: () => void this.files++,
      written: (group, bytes) => {
        this.bytes += bytes;
        for (const p of group) if (p.kind === 'verify' && this.recent.push(p.line) > 50) this.recent.shift();
      },
      afterWrite: async (rotated) => {
        if (rotated || this.bytes > this.maxBytes) await this.pruneOrNote();
      },
      rolledBack: (to, err) => {
        failed(err);
        this.chain.rewind(to);
      },
      settled: () => this.head.soon(),
      logger: opts.logger,
    });
    this.chain = new AuditChain({ card: opts.card, macKey: opts.macKey, clock: this.clock, writer: this.writer, failed });
  }

  /**
   * Open (creating) the audit folder and continue the chain from its last record. One writer only: a
   * second process (a tool while the appliance runs) would fork the chain, so `writer.lock` (O_EXCL,
   * holding the pid) refuses it; a lock left by a dead process is taken over.
   */
  static async open(opts: AuditOptions): Promise<AuditTrail> {
    const trail = new AuditTrail(opts);
    await makeDirDurably(opts.dir);
    await trail.lock.take();
    try {
      await trail.start();
    } catch (err) {
      // whatever failed (recovery, its head), this process holds writer.lock: let it go, or the next
      // open here is refused as "in use by" its own pid
      await trail.abandon();
      throw err;
    }
    return trail;
  }

  /** open() once the lock is held: the card's probe, recovery, retention. */
  private async start(): Promise<void> {
    const opts = this.opts;
    try {
      await macOf(opts.card, opts.macKey, PROBE);
    } catch (err) {
      // a card that cannot MAC (keys missing, device down) is a degraded start, not a failed one: recovery
      // waits for the card (the chain's gate), and records are refused until it answers
      this.deferredRecovery = err instanceof Error ? err : new Error(String(err));
      opts.logger?.error('audit: the crypto card cannot MAC; recovery waits for it and records are refused until then', { err: this.deferredRecovery });
      this.chain.gate = async () => {
        await macOf(opts.card, opts.macKey, PROBE);
        await this.recover(true);
        this.deferredRecovery = null;
        opts.logger?.info('audit: the crypto card answers; recovery done, records are written again', { seq: this.chain.seq });
      };
      return;
    }
    await this.recover();
    await this.pruneOrNote();
  }

  /** A failed open: nothing of this trail writes after it (queued records, the head's timer), its day file is closed, the lock released. */
  private async abandon(): Promise<void> {
    this.closed = true;
    try {
      await this.flush();
      await this.head.stop();
      await this.dayFiles.close();
    } catch (err) {
      this.opts.logger?.warn('audit: cleaning up after a failed open', { err: err as Error });
    } finally {
      await this.lock.release();
    }
  }

  /** Recovery (src/ops/audit-recover.ts), then its notes first; `inChain`: run as the chain's gate, the notes go first in line. */
  private async recover(inChain = false): Promise<void> {
    const outsideHead = await this.head.readOutside();
    const r = await recoverChain({ dir: this.opts.dir, card: this.opts.card, macKey: this.opts.macKey, outsideHead, logger: this.opts.logger, clock: this.clock });
    this.files = r.files;
    this.bytes = r.bytes;
    const end = { seq: r.seq, mac: r.prev, time: r.lastTime };
    this.writer.start(end, (await listAuditFiles(this.opts.dir)).at(-1)?.day ?? '');
    this.chain.rewind(end);
    this.lastHead = r.head;
    this.alarms.carry(r.head, r.alarms, this.clock().toISOString());
    const note = (i: number, resolve: () => void, fail: (e: unknown) => void): QueuedEvent => ({
      event: r.notes[i]!.event,
      skipTo: r.notes[i]!.skipTo,
      done: (line) => {
        const rec = JSON.parse(line) as AuditRecord;
        if (rec.action === 'audit.integrity') this.alarms.signed((r.notes[i]!.event.detail as IntegrityAlarm).problem, rec.seq);
        resolve();
      },
      fail,
    });
    if (inChain) {
      const fail = (err: unknown) => this.opts.logger?.error('audit: a recovery record could not be written', { err: err as Error });
      this.chain.putFirst(r.notes.map((_, i) => note(i, () => {}, fail)));
      this.head.soon();
      return;
    }
    await Promise.all(r.notes.map((_, i) => new Promise<void>((resolve, reject) => this.chain.enqueue(note(i, resolve, reject)))));
    // a fresh head at once: it names what recovery left (and the open alarms), and it is never missing
    // while day files exist
    await this.flush();
    await this.head.write();
  }

  /** Integrity alarms raised at start (or later) and not yet acknowledged by an admin. */
  integrityAlarms(): AuditAlarm[] {
    return this.alarms.list();
  }

  /** Raise an alarm found outside the trail (the outbox behind its high-water mark): a signed record, then status. */
  async raiseAlarm(a: IntegrityAlarm): Promise<AuditRecord> {
    const rec = await this.append(integrityEvent(a));
    this.alarms.raised(a, rec.seq, rec.time);
    await this.head.write();
    return rec;
  }

  /** An admin has looked at the alarms: a signed acknowledgement record; status is clean again. */
  async acknowledgeAlarms(operator: string, note?: string): Promise<AuditRecord | undefined> {
    const detail = this.alarms.ackDetail();
    if (!detail) return undefined;
    const rec = await this.append({ kind: 'security', action: 'audit.integrity-ack', operator, detail: { ...detail, ...(note ? { note } : {}) } });
    this.alarms.acknowledged();
    await this.head.write();
    return rec;
  }

  /** The outbox's high-water mark as the last head recorded it (checked by the composition root at start). */
  recordedOutboxSeq(): number | undefined {
    return this.lastHead?.outboxSeq;
  }

  /** Append one record; resolves with it once it is fsync'd. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new Error('audit trail is closed'));
    return new Promise<AuditRecord>((resolve, reject) => this.chain.enqueue({ event, done: (line) => resolve(JSON.parse(line) as AuditRecord), fail: reject }));
  }

  /** Append without waiting; a failure is logged (and counted in state()), never thrown. */
  record(event: AuditEvent): void {
    if (this.closed) return void this.opts.logger?.error('audit append failed', { err: new Error('audit trail is closed'), action: event.action });
    this.chain.enqueue({ event, fail: (err) => this.opts.logger?.error('audit append failed', { err: err as Error, action: event.action }) });
  }

  private noteFailure(err: unknown): void {
    this.failures++;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  /** The head as it stands when its write's turn comes (src/ops/audit-head.ts writes one after another). */
  private headDoc(closed: boolean): HeadDoc {
    const d = this.writer.durable;
    const doc: HeadDoc = { seq: d.seq, mac: d.mac, time: d.time ?? this.clock().toISOString() };
    if (closed) doc.closed = true;
    return Object.assign(doc, this.alarms.headFields(this.opts.outboxSeq?.()));
  }

  /** prune(), its failure (the anchor's seal, an unlink: a broken card or disk) logged and counted in state(), not thrown:
   * a degraded trail, not a failed open or write. */
  private async pruneOrNote(): Promise<void> {
    try {
      await this.prune();
    } catch (err) {
      this.pruneFailures++;
      this.lastPruneError = err instanceof Error ? err.message : String(err);
      this.opts.logger?.error('audit: pruning failed; the trail goes on, old days stay until a prune succeeds', { err: err as Error });
    }
  }

  /** Delete days past retention, then the oldest days while over the size cap (never today's file; src/ops/audit-retention.ts). */
  async prune(): Promise<string[]> {
    const pruned = await pruneAuditFiles({ dir: this.opts.dir, card: this.opts.card, macKey: this.opts.macKey, retainDays: this.retainDays, maxBytes: this.maxBytes, now: this.clock() });
    if (!pruned) return [];
    const { removed, total, firstSeq } = pruned;
    this.files -= removed.length;
    this.bytes = total;
    const capped = removed.filter((r) => r.reason === 'cap').map((r) => r.name);
    if (capped.length) {
      this.opts.logger?.error('audit: size cap reached, deleted days younger than the retention period', { files: capped, maxBytes: this.maxBytes });
    }
    this.record({ kind: 'audit', action: 'audit.pruned', detail: { removed, firstSeq } });
    return removed.map((r) => r.name);
  }

  /** Wait until everything appended so far is on disk. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.chain.busy) await this.chain.idle();
      else if (this.writer.busy) await this.writer.idle();
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
      lastSeq: this.chain.seq,
      lastTime: this.chain.lastTime,
      files: this.files,
      bytes: this.bytes,
      failures: this.failures,
      lastError: this.lastError,
      alarms: this.integrityAlarms(),
      pruneFailures: this.pruneFailures,
      lastPruneError: this.lastPruneError,
      writable: this.writer.writable && !this.writer.broken && !this.deferredRecovery,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    void this.head.stop();
    // a trail whose recovery never ran (card down all along) leaves head.json as it was
    if (!this.deferredRecovery) await this.head.write(true);
    await this.dayFiles.close();
    await this.lock.release();
  }
}
