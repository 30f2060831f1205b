/**
 * Open the crypto card the config names: `soft` (SoftCard over a key file) or `sdf` (the PCI-E card
 * through firmware-bridge). Both come back as a ProfiledCard, so the verifier sees one CryptoCard.
 * An sdf card whose library or device is unavailable still opens: its health() says why, and its
 * calls answer 8008 until the card is back.
 */
import type { ApplianceConfig } from '../config/schema.ts';
import { EhcError } from '../errors.ts';
import type { Logger } from '../platform/log.ts';
import type { CryptoCard } from './card.ts';
import { ProfiledCard } from './profiled-card.ts';
import { SdfCard, type SdfCardOptions } from './sdf-card.ts';
import { SoftCard } from './soft-card.ts';

export async function openCard(config: ApplianceConfig['card'], log: Logger, options: SdfCardOptions = {}): Promise<CryptoCard> {
  if (config.driver === 'sdf') {
    if (!config.sdf) throw new EhcError('8008', 'card.driver is sdf but card.sdf is missing');
    const card = await SdfCard.open(config.sdf, config.keys, log, options);
    const h = await card.health();
    if (!h.ok) log.warn('crypto card is down at start; local verification answers 8008 until it is back', { detail: h.detail });
    return new ProfiledCard(card, config.keys);
  }
  const card = new ProfiledCard(await SoftCard.open(config.keyFile, config.keys), config.keys);
  log.info('crypto card ready', { driver: 'soft', keyFile: config.keyFile });
  return card;
}
