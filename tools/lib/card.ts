/**
 * Opening the crypto card from a tool, for work that needs the appliance's keys (verify-audit). Only
 * ever opens an existing key file: opening a SoftCard on a missing file would create new keys, and a
 * chain checked with new keys would look edited from its first record.
 */
import { existsSync } from 'node:fs';
import type { ApplianceConfig } from '../../src/config/schema.ts';
import type { CardPrimitives } from '../../src/crypto/card.ts';
import { openCard } from '../../src/crypto/open-card.ts';
import { SoftCard } from '../../src/crypto/soft-card.ts';
import { createLogger } from '../../src/platform/log.ts';
import { CliError, EXIT } from './cli.ts';

/** The configured card (any driver openCard knows), or a software card from `keyFile` when given. */
export async function openToolCard(config: ApplianceConfig, keyFile?: string): Promise<CardPrimitives> {
  const file = keyFile ?? (config.card.driver === 'soft' ? config.card.keyFile : undefined);
  if (file !== undefined && !existsSync(file)) throw new CliError(EXIT.USAGE, `${file} 处没有密码卡密钥文件`, `no card key file at ${file}`);
  try {
    if (keyFile) return await SoftCard.open(keyFile, config.card.keys);
    return await openCard(config.card, createLogger({ level: 'warn', sink: (l) => process.stderr.write(l + '\n') }));
  } catch (err) {
    throw new CliError(EXIT.USAGE, `无法打开密码卡（${config.card.driver}）：${(err as Error).message}`, `cannot open the crypto card (${config.card.driver}): ${(err as Error).message}`);
  }
}
