/**
 * The store's front door for main.ts: open the durable outbox and start its replay.
 *
 *   const outbox = await openOutbox(config, card, log);            // <stateDir>/outbox.sqlite
 *   const replay = startReplay({ outbox, upstream, log, onDeferredResult, batch: config.outbox.replayBatch });
 *   …  replay.status() → /v1/status.outbox, replay.metrics() → /metrics, outbox.lookup(ovn) → GET /v1/verify/{ovn}
 *   await replay.stop(); await outbox.close();                      // on shutdown, in this order
 */
import path from 'node:path';
import type { ApplianceConfig } from '../config/schema.ts';
import type { CardPrimitives } from '../crypto/card.ts';
import type { Logger } from '../platform/log.ts';
import { Replay, type ReplayOptions } from './replay.ts';
import { SqliteOutbox } from './sqlite-outbox.ts';

export { SqliteOutbox } from './sqlite-outbox.ts';
export { Replay } from './replay.ts';
export { registerOutboxMetrics } from './metrics.ts';
export type * from './outbox.ts';

type OutboxSettings = ApplianceConfig['outbox'];

const OUTBOX_FILE = 'outbox.sqlite';

export function outboxPath(config: Pick<ApplianceConfig, 'stateDir'>): string {
  return path.join(config.stateDir, OUTBOX_FILE);
}

/**
 * Opens (creating if needed) the outbox under the state folder, sealed with the card's `storage`
 * (SM4) and `mac` (HMAC-SM3) keys, and checks those keys against the file (8008 when they differ).
 * Without a card (tools that only count or move dead letters) nothing is sealed or opened.
 */
export async function openOutbox(
  config: Pick<ApplianceConfig, 'stateDir' | 'card'> & { outbox: Pick<OutboxSettings, 'maxRecords' | 'maxBytes' | 'maxAgeHours'> & Partial<OutboxSettings> },
  card: CardPrimitives | undefined,
  log: Logger,
  /** false when the card is down at start: the key check then happens at the outbox's first use */
  options: { checkKeysNow?: boolean } = {},
): Promise<SqliteOutbox> {
  const { maxRecords, maxBytes, maxAgeHours } = config.outbox;
  const outbox = SqliteOutbox.open({
    file: outboxPath(config),
    card,
    keys: { storage: config.card.keys.storage, mac: config.card.keys.mac },
    limits: { maxRecords, maxBytes, maxAgeHours },
    log: log.child({ component: 'outbox' }),
  });
  if (card && options.checkKeysNow !== false) {
    try {
      await outbox.ready();
    } catch (err) {
      await outbox.close();
      throw err;
    }
  }
  return outbox;
}

/** Starts delivering the outbox; `stop()` lets the record in flight finish and commits its ack. */
export function startReplay(options: ReplayOptions): Replay {
  return new Replay({ ...options, log: options.log.child({ component: 'replay' }) }).start();
}
