/**
 * ehc-edge process entry: load and validate the config (exit 2 naming the file and key that is
 * wrong), start the appliance, stop cleanly on SIGTERM/SIGINT.
 */
import { configPathFrom, ConfigError, loadConfig } from './config/load.ts';
import { createLogger } from './platform/log.ts';
import { createNotifier, statusSummary } from './platform/systemd.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(configPathFrom(process.argv.slice(2), process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ehc-edge: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: config.log.level, pii: config.log.pii });
  // sd_notify from this (the main) process; a no-op when not started by systemd
  const notifier = createNotifier(log.child({ component: 'systemd' }), { watchdog: config.systemd.watchdog });
  // loaded after the config is known to be valid, so a config error is reported without loading the rest
  const { startAppliance } = await import('./appliance.ts');
  let appliance;
  try {
    appliance = await startAppliance(config, log);
  } catch (err) {
    log.error('start-up failed', { error: err });
    notifier.status(`start-up failed: ${String((err as Error)?.message ?? err)}`);
    notifier.close();
    process.exit(1);
  }
  // config valid, store and card open, HIS port listening: READY=1, then the watchdog
  const summary = async () => statusSummary(await appliance.status()).replace(/^/, `${appliance.url}; `);
  notifier.ready(await summary().catch(() => appliance.url));
  notifier.watchdog.start();
  const statusTimer = setInterval(() => {
    summary().then((text) => notifier.status(text), () => undefined);
  }, 15_000);
  statusTimer.unref();
  log.info('ehc-edge ready', { url: appliance.url, policy: config.verify.policy, card: config.card.driver, config: config.configPath });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    notifier.stopping('stopping: closing the HIS port, flushing the outbox');
    clearInterval(statusTimer);
    await appliance.stop();
    log.info('stopped');
    notifier.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
