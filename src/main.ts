/**
 * ehc-edge process entry: load and validate the config and check what it points at (TLS files,
 * listen ports, placeholders: src/config/startup-checks.ts) — exit 2 with `file: key: what to fix`,
 * no stack trace — start the appliance, stop cleanly on SIGTERM/SIGINT.
 */
import { configPathFrom, ConfigError, loadConfig } from './config/load.ts';
import { checkStartup } from './config/startup-checks.ts';
import { createLogger } from './platform/log.ts';
import { createNotifier, statusSummary } from './platform/systemd.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(configPathFrom(process.argv.slice(2), process.env));
    await checkStartup(config);
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
    // a port taken between the check and the listen is still the config's problem, not a crash
    const inUse = causeCode(err) === 'EADDRINUSE';
    if (inUse) {
      process.stderr.write(`ehc-edge: configuration error: ${config.configPath}: his.listen: ${config.his.listen} is already in use by another process: stop it, or choose another address\n`);
      notifier.close();
      process.exit(2);
    }
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
  // SIGHUP (systemctl reload ehc-edge): re-read the config; apply HIS keys, log level and scanners; name the rest.
  // The same path as POST /v1/admin/reload: appliance.reload (src/config/reload.ts reloadConfigFile)
  let reloading = Promise.resolve();
  const reload = async () => {
    if (stopping) return;
    notifier.status('reloading the config (SIGHUP)');
    try {
      await appliance.reload('SIGHUP');
    } catch (err) {
      log.error('config reload failed: the running config stays', { error: err });
    } finally {
      notifier.status(await summary().catch(() => appliance.url));
    }
  };
  process.on('SIGHUP', () => {
    reloading = reloading.then(reload);
  });
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** the errno code of an error or of any error in its cause chain */
function causeCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 8; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

void main();
