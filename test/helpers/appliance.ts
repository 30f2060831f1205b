import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { ApplianceConfig } from '../../src/config/schema.ts';
import { startAppliance, type Appliance } from '../../src/appliance.ts';
import { memoryLogger } from '../../src/platform/log.ts';
import { tempDir } from './tmp.ts';

export const API_KEY = 'demo-his-key-change-me-0001';

/** A real appliance on free loopback ports in a fresh state folder, with the embedded simulator. */
export async function testAppliance(adjust: (doc: Record<string, any>) => void = () => {}) {
  const t = tempDir('ehc-appliance-');
  const doc = JSON.parse(readFileSync('appliance.config.json', 'utf8')) as Record<string, any>;
  doc.stateDir = path.join(t.dir, 'state');
  doc.his.listen = '127.0.0.1:0';
  doc.simulator.listen = '127.0.0.1:0';
  doc.upstream.url = 'http://127.0.0.1:0/ehc';
  doc.upstream.healthIntervalMs = 500;
  // a loaded CI machine stalls the event loop for a second or more (the embedded simulator with it):
  // timers expire before the answer is read, and one failed probe opens the breaker (8004 for the
  // next calls). Timeouts well above such stalls; the down-link tests stop the simulator (refused at
  // once), and the tests of timeouts and the breaker set their own values (upstream-link, protocol-upstream)
  doc.upstream.timeoutMs = 5000;
  doc.upstream.connectTimeoutMs = 3000;
  doc.upstream.probeTimeoutMs = 5000;
  // replay starts at once when the link returns (on site: a random 0..10 s, so sites do not stampede)
  doc.outbox = { ...(doc.outbox ?? {}), replayStartJitterMs: 0 };
  doc.scannerAutoDetect = false;
  adjust(doc);
  const config: ApplianceConfig = parseConfig(doc, path.join(t.dir, 'appliance.config.json'));
  const log = memoryLogger();
  const appliance: Appliance = await startAppliance(config, log);
  const post = async (body: unknown) => {
    const res = await fetch(`${appliance.url}/v1/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  return {
    appliance,
    config,
    log,
    dir: t.dir,
    post,
    async stop() {
      await appliance.stop();
      t.cleanup();
    },
  };
}

export function readAll(file: string): string {
  return readFileSync(file, 'utf8');
}
