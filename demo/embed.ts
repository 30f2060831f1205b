/**
 * The demo default: the home-card-system simulator (demo/simulator) started in-process, so that
 * `npm start` works with no network. It reads local codes with the appliance's own SoftCard keys and
 * foreign codes of `simulator.ehcin` with fixed demo keys. When `upstream.url` points at the
 * simulator's listen address with port 0, it is rewritten to the port actually bound. Off on site.
 */
import type { ApplianceConfig } from '../src/config/schema.ts';
import type { Logger } from '../src/platform/log.ts';
import { splitHostPort } from '../src/his/server.ts';
import { startSimulator, type SimulatorHandle } from './simulator/index.ts';

export type EmbeddedSimulator = SimulatorHandle;

export async function startEmbeddedSimulator(config: ApplianceConfig, log: Logger): Promise<EmbeddedSimulator> {
  const { host, port } = splitHostPort(config.simulator.listen);
  const sim = await startSimulator({
    host,
    port,
    keyFile: config.card.driver === 'soft' ? config.card.keyFile : undefined,
    localEhcin: config.site.localEhcins[0],
    foreignEhcin: config.simulator.ehcin,
    apps: [{ appId: config.upstream.appId, secret: config.upstream.appSecret, dialect: config.upstream.dialect, appKey: config.upstream.appKey }],
  });
  log.info('home-card-system simulator listening (demo upstream)', { url: sim.url });
  return sim;
}

/** The upstream section with `url`/`crossDomainUrl` pointed at the port the simulator bound (a copy: the config is frozen). */
export function upstreamOnSimulator(config: ApplianceConfig, sim: EmbeddedSimulator): ApplianceConfig['upstream'] {
  const { host, port } = splitHostPort(config.simulator.listen);
  const upstream = { ...config.upstream };
  for (const key of ['url', 'crossDomainUrl'] as const) {
    const u = new URL(upstream[key]);
    if (u.hostname === host && Number(u.port || 80) === port && port === 0) {
      u.port = String(sim.port);
      upstream[key] = u.toString();
    }
  }
  return upstream;
}
