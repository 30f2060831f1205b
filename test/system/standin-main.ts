/**
 * DEVELOPMENT STAND-IN for src/main.ts, used only to develop the booted-system test before the real
 * composition root landed (EHC_PACKAGE_STANDIN=test/system/standin-main.ts npm run package).
 * Loads the config, keeps a keys file in the state dir, serves /v1/health, speaks sd_notify.
 */
import { createServer } from 'node:http';
import { existsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { configPathFrom, loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/ops/log.ts';
import { createNotifier } from '../../src/ops/systemd.ts';

const log = createLogger();
const config = loadConfig(configPathFrom(process.argv, process.env));
const notifier = createNotifier(log, { watchdog: config.systemd.watchdog });
if (!existsSync(config.card.keyFile)) writeFileSync(config.card.keyFile, JSON.stringify({ demo: randomBytes(16).toString('hex') }), { mode: 0o600 });
const [host, port] = [config.his.listen.replace(/:\d+$/, ''), Number(config.his.listen.split(':').pop())];
const server = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(req.url === '/v1/health' ? { status: 'ok', standin: true } : { error: 'not found' }));
});
server.listen(port, host, () => {
  notifier.ready('stand-in: listening');
  notifier.watchdog.start();
  log.info('stand-in listening', { listen: config.his.listen });
});
process.on('SIGTERM', () => {
  notifier.stopping('stand-in: stopping');
  server.close(() => {
    notifier.close();
    process.exit(0);
  });
});
