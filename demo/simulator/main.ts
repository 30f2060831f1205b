/**
 * CLI: run the home-card-system simulator.
 *   node --import tsx demo/simulator/main.ts --listen 127.0.0.1:18443 --key-file var/soft-card.keys.json
 *     [--local-ehcin 3502A0001] [--foreign-ehcin 3501A0002] [--app ID:SECRET]...
 *     [--tls-cert server.pem --tls-key server.key --tls-ca clients-ca.pem] [--population N]
 *   --population N  how many people it knows (default 24; makePopulation(N) gives the same people everywhere)
 * Loopback addresses only. Stops on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startSimulator, type SimApp } from './server.ts';
import { makePopulation } from './population.ts';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:18443' },
    'key-file': { type: 'string' },
    'local-ehcin': { type: 'string' },
    'foreign-ehcin': { type: 'string' },
    app: { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    population: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log('usage: demo/simulator/main.ts --listen HOST:PORT [--key-file FILE] [--local-ehcin EHCIN] [--foreign-ehcin EHCIN] [--app ID:SECRET] [--tls-cert F --tls-key F --tls-ca F] [--population N]');
  process.exit(0);
}

const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(values.listen!);
if (!m) {
  console.error(`--listen must be HOST:PORT, got ${values.listen}`);
  process.exit(2);
}
const tlsGiven = [values['tls-cert'], values['tls-key'], values['tls-ca']].filter(Boolean).length;
if (tlsGiven !== 0 && tlsGiven !== 3) {
  console.error('--tls-cert, --tls-key and --tls-ca go together (mutual TLS)');
  process.exit(2);
}
const populationSize = values.population === undefined ? undefined : Number(values.population);
if (populationSize !== undefined && !(Number.isInteger(populationSize) && populationSize >= 1 && populationSize <= 1_000_000)) {
  console.error(`--population must be a whole number 1…1000000, got ${values.population}`);
  process.exit(2);
}
const apps: SimApp[] | undefined = values.app?.map((a) => {
  const i = a.indexOf(':');
  if (i <= 0) {
    console.error(`--app must be ID:SECRET, got ${a}`);
    process.exit(2);
  }
  return { appId: a.slice(0, i), secret: a.slice(i + 1) };
});

try {
  const sim = await startSimulator({
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: Number(m[2]),
    keyFile: values['key-file'],
    localEhcin: values['local-ehcin'],
    foreignEhcin: values['foreign-ehcin'],
    apps,
    ...(populationSize ? { population: makePopulation(populationSize) } : {}),
    tls: tlsGiven === 3 ? { cert: values['tls-cert']!, key: values['tls-key']!, ca: values['tls-ca']! } : undefined,
  });
  console.log(JSON.stringify({ msg: 'home card system simulator listening', url: sim.url, cardSystems: sim.cardSystems.map((c) => c.ehcin) }));
  const stop = () => void sim.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  console.error(`simulator: ${(err as Error).message}`);
  process.exit(1);
}
