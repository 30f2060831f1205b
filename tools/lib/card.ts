/**
 * Opening the crypto card from a tool, for work that needs the appliance's keys (verify-audit). Only
 * ever opens an existing key file: opening a SoftCard on a missing file would create new keys, and a
 * chain checked with new keys would look edited from its first record.
 */
import { existsSync } from 'node:fs';
import type { ApplianceConfig } from '../../src/config/types.ts';
import type { CardPrimitives } from '../../src/crypto/card.ts';
import { SoftCard } from '../../src/crypto/soft-card.ts';
import { CliError, EXIT } from './cli.ts';

export async function openToolCard(config: ApplianceConfig, keyFile = config.card.keyFile): Promise<CardPrimitives> {
  if (config.card.driver !== 'soft' && keyFile === config.card.keyFile) {
    throw new CliError(EXIT.USAGE, `card driver ${config.card.driver}: this tool opens the software card only in this build (give --key-file of a soft card to check with it)`);
  }
  if (!existsSync(keyFile)) throw new CliError(EXIT.USAGE, `no card key file at ${keyFile}`);
  try {
    return await SoftCard.open(keyFile, config.card.keys);
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot open the card key file ${keyFile}: ${(err as Error).message}`);
  }
}
