/** Open the crypto card the config names. */
import { EhcError } from '../errors.ts';
import type { ApplianceConfig } from '../config/types.ts';
import type { Logger } from '../ops/log.ts';
import type { CryptoCard } from './card.ts';
import { ProfiledCard } from './profiled-card.ts';
import { SoftCard } from './soft-card.ts';

export async function openCard(config: ApplianceConfig['card'], log: Logger): Promise<CryptoCard> {
  if (config.driver === 'soft') {
    const card = new ProfiledCard(await SoftCard.open(config.keyFile, config.keys), config.keys);
    log.info('crypto card ready', { driver: 'soft', keyFile: config.keyFile });
    return card;
  }
  throw new EhcError('8008', `card.driver "${config.driver}" is not available in this build`);
}
