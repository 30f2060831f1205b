/** Config for operator tools: the same lookup as the appliance (--config, EHC_EDGE_CONFIG, ./appliance.config.json). */
import { configPathFrom, ConfigError, loadConfig } from '../src/config/load.ts';
import type { ApplianceConfig } from '../src/config/types.ts';

export function toolConfig(argv: string[]): ApplianceConfig {
  try {
    return loadConfig(configPathFrom(argv, process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Base URL of the running appliance's HIS port. */
export function hisUrl(config: ApplianceConfig): string {
  const scheme = config.his.tls ? 'https' : 'http';
  const listen = config.his.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
  return `${scheme}://${listen}`;
}

/** The first plain API key of the config (an sm3: entry cannot be used to call). */
export function hisKey(config: ApplianceConfig): string | undefined {
  return process.env.EHC_EDGE_API_KEY ?? config.his.apiKeys.find((k) => !k.startsWith('sm3:'));
}

export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && new URL(metaUrl).pathname === process.argv[1];
}
