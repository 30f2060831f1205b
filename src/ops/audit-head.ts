/**
 * The audit head: `head.json` (MACed, written durably) names the last durable record, so a cut tail is
 * detected; the same sealed text is kept outside the audit folder (the outbox database) through an
 * anchor. Writes run one after another (a timer's write and close()'s must not share the temp file);
 * between closes a head is written at most once a second (soon()).
 */
import path from 'node:path';
import type { KeyIndex } from '../crypto/card.ts';
import { replaceFileDurably } from '../platform/durable-write.ts';
import type { Logger } from '../platform/log.ts';
import { macOf, sealDoc, type AuditMacCard, type HeadDoc } from './audit-record.ts';

/** where the head is kept outside the audit folder: sealed head text */
export interface HeadAnchor {
  read(): Promise<string | undefined> | string | undefined;
  write(text: string): Promise<void> | void;
}

export interface HeadWriterOptions {
  dir: string;
  card: AuditMacCard;
  macKey: KeyIndex;
  anchor?: HeadAnchor;
  logger?: Logger;
  /** the head as it stands when its write's turn comes; `closed` for the clean close's */
  doc(closed: boolean): HeadDoc;
  /** head.json holds `d` now */
  written?(d: HeadDoc): void;
}

export class HeadWriter {
  private chain: Promise<void> = Promise.resolve();
  private lastLog = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: HeadWriterOptions) {}

  /** Writes the head (built when its turn comes) to head.json, then to the anchor. */
  write(closed = false): Promise<HeadDoc> {
    const run = async () => {
      const d = this.o.doc(closed);
      const sealed = await sealDoc(this.o.card, this.o.macKey, d);
      await replaceFileDurably(path.join(this.o.dir, 'head.json'), sealed);
      this.o.written?.(d);
      // the same head outside the audit folder, and its seq in the journal (at most once a minute)
      await this.o.anchor?.write(sealed.trim());
      const now = Date.now();
      if (d.closed || now - this.lastLog >= 60_000) {
        this.lastLog = now;
        this.o.logger?.info('audit head', { seq: d.seq, mac: d.mac.slice(0, 16), closed: d.closed ?? false });
      }
      return d;
    };
    const next = this.chain.then(run, run);
    this.chain = next.then(
      () => {},
      () => {},
    );
    return next;
  }

  /** A write within a second, unless one is due already; a failure is logged. */
  soon(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.write().catch((err) => this.o.logger?.warn('audit head not written', { err: err as Error }));
    }, 1000);
    this.timer.unref();
  }

  /** No more timed writes (the trail closes; its last head is written by write()); resolves when a write under way is done. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return this.chain;
  }

  /** The head kept outside the audit folder, when its MAC holds. */
  async readOutside(): Promise<HeadDoc | undefined> {
    const text = await this.o.anchor?.read();
    if (!text) return undefined;
    try {
      const sealed = JSON.parse(text) as { doc: HeadDoc; mac: string };
      if ((await macOf(this.o.card, this.o.macKey, JSON.stringify(sealed.doc))) === sealed.mac) return sealed.doc;
    } catch {
      /* below */
    }
    this.o.logger?.error('audit: the head anchored in the outbox fails its MAC (ignored)');
    return undefined;
  }
}
