/**
 * The composition root as a function: build every component from a validated config, start them in
 * order, stop them in reverse. `src/main.ts` wraps it in a process (signals, exit codes, systemd);
 * tests and benchmarks start real appliances with it.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import type { ApplianceConfig } from './config/types.ts';
import type { CryptoCard } from './crypto/card.ts';
import { openCard } from './crypto/open-card.ts';
import { createHisApp, type HisExtension } from './his/app.ts';
import { startHisServer, type HisServer } from './his/server.ts';
import type { Logger } from './ops/log.ts';
import { createRegistry, verifyMetrics } from './ops/metrics.ts';
import { startOps } from './ops/wire.ts';
import { HttpUpstream } from './protocol/http-upstream.ts';
import type { Upstream } from './protocol/upstream.ts';
import { RoutingVerifier, type VerifyObserver } from './verify/verifier.ts';
import type { Verifier } from './verify/types.ts';
import { startEmbeddedSimulator, type EmbeddedSimulator } from './simulator-embed.ts';

export const VERSION: string = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

export interface Appliance {
  config: ApplianceConfig;
  url: string;
  card: CryptoCard;
  upstream: Upstream;
  verifier: Verifier;
  registry: Registry;
  simulator?: EmbeddedSimulator;
  status(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startAppliance(config: ApplianceConfig, log: Logger): Promise<Appliance> {
  const startedAt = Date.now();
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn('error while stopping', { error: err });
      }
    }
  };
  try {
    mkdirSync(config.stateDir, { recursive: true, mode: 0o750 });
    const registry = createRegistry();

    const card = await openCard(config.card, log.child({ component: 'card' }));
    stops.push(() => card.close());

    let simulator: EmbeddedSimulator | undefined;
    if (config.simulator.enabled) {
      simulator = await startEmbeddedSimulator(config, log.child({ component: 'simulator' }));
      stops.push(() => simulator!.close());
    }

    const upstream = new HttpUpstream(config.upstream, { logger: log.child({ component: 'upstream' }) });
    stops.push(() => upstream.close());

    const ops = await startOps({ config, card, upstream, log: log.child({ component: 'ops' }), version: VERSION, startedAt: new Date(startedAt) });
    stops.push(() => ops.close());

    const observers: VerifyObserver[] = [verifyMetrics(registry), ops.observer];
    const verifier = new RoutingVerifier({
      card,
      upstream,
      settings: { ...config.verify, localEhcins: config.site.localEhcins, termId: config.site.termId },
      observers,
    });

    const status = async (): Promise<Record<string, unknown>> => ({
      ...(await ops.status()),
      policy: config.verify.policy,
      simulator: simulator ? { url: simulator.url } : undefined,
    });
    const extensions: HisExtension[] = [...ops.extensions];
    const app = createHisApp({
      verifier,
      apiKeys: config.his.apiKeys,
      bodyLimitBytes: config.his.bodyLimitBytes,
      log: log.child({ component: 'his' }),
      registry,
      status,
      ready: async () => {
        const c = await card.health();
        return { ok: c.ok, checks: { card: c.ok } };
      },
      onAuthFailure: ops.onAuthFailure,
      extensions,
    });
    const his: HisServer = await startHisServer(app, config.his);
    stops.push(() => his.close());
    log.info('HIS port listening', { url: his.url });

    return { config, url: his.url, card, upstream, verifier, registry, simulator, status, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
