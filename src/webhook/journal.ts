/**
 * The webhook journal: what still has to reach a HIS webhook, durable before it is counted as queued.
 *
 * `<stateDir>/webhooks/journal.jsonl` (0600) holds one line per delivery: its id, target, sequence number
 * and the body sealed at rest (SM4-CBC + HMAC-SM3 under the card's storage/mac keys, src/store/seal.ts:
 * results carry identity). Lines are appended in group commits (one write + fdatasync in the threadpool
 * per batch, so the scan path never waits on the disk). `<stateDir>/webhooks/delivered.json` holds each
 * target's last delivered sequence number, written with the durable-write helper after each delivery.
 * A power cut can cost (a) the lines of the batch being written — results published in the last
 * milliseconds, never a delivered or acknowledged one — and (b) the cursor of the delivery in flight, which
 * is then delivered again with the same delivery id (receivers dedupe by id). A torn last line is cut
 * at start; delivered lines are dropped from the file (durably) at start.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { CardPrimitives, KeyIndex } from '../crypto/card.ts';
import { RecordSealer } from '../store/seal.ts';
import { createFileDurably, replaceFileDurably } from '../platform/durable-write.ts';

export interface JournalEntry {
  id: string;
  target: string;
  seq: number;
  iv: string;
  body: string;
  mac: string;
}

export interface WebhookJournalOptions {
  dir: string;
  card: CardPrimitives;
  keys: { storage: KeyIndex; mac: KeyIndex };
  /** undelivered entries at most; beyond it new ones are refused (counted, logged by the caller) */
  maxQueued: number;
}

const aad = (e: { id: string; target: string; seq: number }) => Buffer.from(`${e.id}|${e.target}|${e.seq}`);

export class WebhookJournal {
  readonly #file: string;
  readonly #cursorFile: string;
  readonly #sealer: RecordSealer;
  #fh?: FileHandle;
  #entries: JournalEntry[] = [];
  #cursor: Record<string, number> = {};
  #seq = 0;
  #pending: Array<{ line: string; entry: JournalEntry; done: (err?: unknown) => void }> = [];
  #writing?: Promise<void>;

  private constructor(readonly options: WebhookJournalOptions) {
    this.#file = path.join(options.dir, 'journal.jsonl');
    this.#cursorFile = path.join(options.dir, 'delivered.json');
    this.#sealer = new RecordSealer(options.card, options.keys);
  }

  static async open(options: WebhookJournalOptions): Promise<WebhookJournal> {
    const j = new WebhookJournal(options);
    await j.#load();
    return j;
  }

  async #load(): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    if (existsSync(this.#cursorFile)) this.#cursor = JSON.parse(readFileSync(this.#cursorFile, 'utf8')) as Record<string, number>;
    if (!existsSync(this.#file)) await createFileDurably(this.#file, '', { mode: 0o600 });
    const text = readFileSync(this.#file, 'utf8');
    const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1); // a torn last line is cut
    for (const line of complete.split('\n')) {
      if (!line.trim()) continue;
      try {
        this.#entries.push(JSON.parse(line) as JournalEntry);
      } catch {
        // a line of NULs or half a record (lost sync): skip it; its delivery was never counted as queued
      }
    }
    this.#seq = Math.max(0, ...this.#entries.map((e) => e.seq), ...Object.values(this.#cursor));
    this.#entries = this.#entries.filter((e) => e.seq > (this.#cursor[e.target] ?? 0));
    if (complete !== text || (this.#entries.length === 0 && text.length > 0)) await this.#rewrite();
    this.#fh = await open(this.#file, 'a', 0o600);
  }

  async #rewrite(): Promise<void> {
    await replaceFileDurably(this.#file, this.#entries.map((e) => JSON.stringify(e) + '\n').join(''), { mode: 0o600 });
  }

  get queued(): number {
    return this.#entries.length;
  }

  queuedFor(target: string): number {
    return this.#entries.filter((e) => e.target === target).length;
  }

  /** Seal and append one delivery; resolves once it is on disk. Refused (false) when the journal is full. */
  async append(target: string, body: string): Promise<boolean> {
    if (this.#entries.length + this.#pending.length >= this.options.maxQueued) return false;
    const head = { id: randomUUID(), target, seq: ++this.#seq };
    const sealed = await this.#sealer.seal(Buffer.from(body, 'utf8'), aad(head));
    const entry: JournalEntry = { ...head, iv: sealed.iv.toString('hex'), body: sealed.body.toString('hex'), mac: sealed.mac.toString('hex') };
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ line: JSON.stringify(entry) + '\n', entry, done: (err) => (err ? reject(err) : resolve()) });
      this.#writing ??= this.#flush();
    });
    return true;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, this.#pending.length);
        try {
          await this.#fh!.appendFile(batch.map((b) => b.line).join(''));
          await this.#fh!.datasync();
          batch.sort((a, b) => a.entry.seq - b.entry.seq);
          for (const b of batch) this.#entries.push(b.entry);
          this.#entries.sort((a, b) => a.seq - b.seq);
          for (const b of batch) b.done();
        } catch (err) {
          for (const b of batch) b.done(err);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }

  /** The oldest undelivered entry of a target, opened. */
  async next(target: string): Promise<{ entry: JournalEntry; body: string } | undefined> {
    const entry = this.#entries.find((e) => e.target === target);
    if (!entry) return undefined;
    const plain = await this.#sealer.open({ iv: Buffer.from(entry.iv, 'hex'), body: Buffer.from(entry.body, 'hex'), mac: Buffer.from(entry.mac, 'hex') }, aad(entry));
    return { entry, body: plain.toString('utf8') };
  }

  /** The entry reached its target: the cursor moves durably, then the entry leaves the queue. */
  async delivered(entry: JournalEntry): Promise<void> {
    this.#cursor[entry.target] = Math.max(this.#cursor[entry.target] ?? 0, entry.seq);
    await replaceFileDurably(this.#cursorFile, JSON.stringify(this.#cursor), { mode: 0o600 });
    this.#entries = this.#entries.filter((e) => e !== entry);
  }

  async close(): Promise<void> {
    await this.#writing;
    await this.#fh?.close();
    this.#fh = undefined;
  }
}
