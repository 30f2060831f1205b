/**
 * Durable, ordered outbox of what must still reach the home card system. `append` resolves only once
 * the record is on disk (fsync'd). Records are delivered with `peek` and removed with `ack` after the
 * upstream has answered. Implementations live beside this file.
 */
import type { UpstreamMethod, VerifyBiz } from '../protocol/upstream.ts';

export type OutboxKind =
  /** a code verified locally that the home system must still see (usage record) */
  | 'usage'
  /** a verification a caller asked to defer; its answer is published when it arrives */
  | 'deferred';

export interface OutboxEntry {
  kind: OutboxKind;
  method: UpstreamMethod;
  /** exactly the payload of the first send; replayed unchanged */
  biz: VerifyBiz;
  termId: string;
  scannerId?: string;
  createdAt: string; // ISO
}

export interface StoredOutboxEntry extends OutboxEntry {
  seq: number;
  attempts: number;
}

export type DeliveryOutcome =
  | { status: 'delivered'; retCode: string }
  | { status: 'dead'; retCode: string; reason: string };

export interface OutboxStats {
  depth: number;
  bytes: number;
  oldestAgeSeconds: number | null;
  dead: number;
  full: boolean;
}

export interface Outbox {
  append(entry: OutboxEntry): Promise<number>;
  peek(limit: number): Promise<StoredOutboxEntry[]>;
  ack(seq: number, outcome: DeliveryOutcome): Promise<void>;
  stats(): OutboxStats;
  close(): Promise<void>;
}
