/**
 * Retention of the audit trail: day files older than `retainDays` are deleted; when the folder exceeds
 * `maxBytes` the oldest days are deleted even if younger (a full disk would stop verifications), never
 * today's file. Before deleting, `anchor.json` (MACed) records where the kept chain starts, so
 * verification still proves nothing was removed from the start.
 */
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { KeyIndex } from '../crypto/card.ts';
import { fsyncDirSync, replaceFileDurably } from '../platform/durable-write.ts';
import { listAuditFiles, localDay, sealDoc, splitLine, type AnchorDoc, type AuditMacCard } from './audit-record.ts';

export interface RetentionOptions {
  dir: string;
  card: AuditMacCard;
  macKey: KeyIndex;
  retainDays: number;
  maxBytes: number;
  now: Date;
}

export interface Pruned {
  removed: Array<{ name: string; reason: 'age' | 'cap' }>;
  /** bytes of the day files kept */
  total: number;
  /** seq of the first record kept */
  firstSeq: number;
}

/** Deletes what retention and the size cap say must go (anchor first); undefined when nothing goes. */
export async function pruneAuditFiles(o: RetentionOptions): Promise<Pruned | undefined> {
  const files = await listAuditFiles(o.dir);
  const oldest = localDay(new Date(o.now.getTime() - o.retainDays * 86_400_000));
  let total = files.reduce((n, f) => n + f.bytes, 0);
  const removed: Pruned['removed'] = [];
  let k = 0;
  while (k < files.length - 1 && files[k]!.day < oldest) {
    removed.push({ name: files[k]!.name, reason: 'age' });
    total -= files[k]!.bytes;
    k++;
  }
  while (k < files.length - 1 && total > o.maxBytes) {
    removed.push({ name: files[k]!.name, reason: 'cap' });
    total -= files[k]!.bytes;
    k++;
  }
  if (removed.length === 0) return undefined;
  const keep = files[k]!;
  const first = (await readFile(path.join(o.dir, keep.name), 'utf8')).split('\n', 1)[0] ?? '';
  const parts = splitLine(first);
  if (!parts) throw new Error(`audit: cannot prune, first record of ${keep.name} unreadable`);
  const head = JSON.parse(parts.body) as { seq: number; prev: string };
  const anchor: AnchorDoc = { firstSeq: head.seq, prev: head.prev, prunedAt: o.now.toISOString(), removed: removed.map((r) => r.name) };
  await replaceFileDurably(path.join(o.dir, 'anchor.json'), await sealDoc(o.card, o.macKey, anchor));
  for (const r of removed) await unlink(path.join(o.dir, r.name));
  fsyncDirSync(o.dir);
  return { removed, total, firstSeq: head.seq };
}
