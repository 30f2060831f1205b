/**
 * The audit head: `head.json` (MACed, written durably) names the last durable record, so a cut tail is
 * detected; the same sealed text is kept outside the audit folder (the outbox database) through an
 * anchor. Writes run one after another (a timer's write and close()'s must not share the temp file).
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

export class HeadWriter {
  private chain: Promise<void> = Promise.resolve();
  private lastLog = 0;

  constructor(
    private readonly dir: string,
    private readonly card: AuditMacCard,
    private readonly macKey: KeyIndex,
    private readonly anchor?: HeadAnchor,
    private readonly logger?: Logger,
  ) {}

  /** Writes `doc()` (built when its turn comes) to head.json (then `written`), and to the anchor. */
  write(doc: () => HeadDoc, written?: (d: HeadDoc) => void): Promise<HeadDoc> {
    const run = async () => {
      const d = doc();
      const sealed = await sealDoc(this.card, this.macKey, d);
      await replaceFileDurably(path.join(this.dir, 'head.json'), sealed);
      written?.(d);
      // the same head outside the audit folder, and its seq in the journal (at most once a minute)
      await this.anchor?.write(sealed.trim());
      const now = Date.now();
      if (d.closed || now - this.lastLog >= 60_000) {
        this.lastLog = now;
        this.logger?.info('audit head', { seq: d.seq, mac: d.mac.slice(0, 16), closed: d.closed ?? false });
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

  /** The head kept outside the audit folder, when its MAC holds. */
  async readOutside(): Promise<HeadDoc | undefined> {
    const text = await this.anchor?.read();
    if (!text) return undefined;
    try {
      const sealed = JSON.parse(text) as { doc: HeadDoc; mac: string };
      if ((await macOf(this.card, this.macKey, JSON.stringify(sealed.doc))) === sealed.mac) return sealed.doc;
    } catch {
      /* below */
    }
    this.logger?.error('audit: the head anchored in the outbox fails its MAC (ignored)');
    return undefined;
  }
}
