/**
 * Durable, ordered outbox of what must still reach the home card system. `append` resolves only once
 * the record is on disk (fsync'd). Records are delivered with `peek` and removed with `ack` after the
 * upstream has answered. Implementations live beside this file.
 */
import type { UpstreamBiz, UpstreamIdentity, UpstreamMethod } from '../protocol/upstream.ts';

export type OutboxKind =
  /** a code verified locally that the home system must still see (usage record), or a province
   *  usage upload / terminal registration (method ehc.ehealthcode.usecarddate / addterm) */
  | 'usage'
  /** a verification a caller asked to defer; its answer is published when it arrives */
  | 'deferred';

export interface OutboxEntry {
  kind: OutboxKind;
  method: UpstreamMethod;
  /** exactly the payload of the first send; replayed unchanged */
  biz: UpstreamBiz;
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

/** The home system's answer to a deferred verification, kept (encrypted) for GET /v1/verify/{out_verify_no}. */
export interface DeferredAnswer {
  outVerifyNo: string;
  /** `0000` answered; `3002` the home system already had it (its first answer was not kept); else the rejection */
  retCode: string;
  retMsg: string;
  identity?: UpstreamIdentity;
  answeredAt: string; // ISO
}

export type OutboxLookup =
  | { state: 'pending'; seq: number; createdAt: string; attempts: number }
  | ({ state: 'answered' } & DeferredAnswer);

export interface OutboxStats {
  depth: number;
  bytes: number;
  oldestAgeSeconds: number | null;
  dead: number;
  full: boolean;
  /** why it is full: `maxRecords`, `maxBytes` or `maxAgeHours` */
  fullReason?: string;
}

export interface Outbox {
  append(entry: OutboxEntry): Promise<number>;
  /** the oldest `limit` records, in seq order; with `afterSeq` only those after it (replay's window reads on) */
  peek(limit: number, afterSeq?: number): Promise<StoredOutboxEntry[]>;
  /** `answer` (deferred records) is stored in the same transaction as the ack. */
  ack(seq: number, outcome: DeliveryOutcome, answer?: DeferredAnswer): Promise<void>;
  stats(): OutboxStats;
  close(): Promise<void>;
}
