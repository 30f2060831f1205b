/**
 * HIS port throughput and latency: POST /v1/verify with distinct local dynamic codes against a real
 * appliance process, and a bare Hono JSON POST route in another process, in the same run:
 *   (a) saturation at 1000 connections: requests/s of each and the ratio
 *   (b) fixed offered load of 1000 req/s: p50/p99 of each and the ratio
 * autocannon drives both from this process (the load generator shares the 2 cores).
 */
import autocannon from 'autocannon';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { benchConfig, startChild } from './lib.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CODES = 20_000;

interface Run { rps: number; p50: number; p99: number; errors: number; non2xx: number; total: number }

function load(url: string, bodies: string[], opts: { connections: number; overallRate?: number }, headers: Record<string, string>): Promise<Run> {
  let i = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/verify`,
        method: 'POST',
        connections: opts.connections,
        duration: SECONDS,
        ...(opts.overallRate ? { overallRate: opts.overallRate } : {}),
        headers: { 'content-type': 'application/json', ...headers },
        requests: [{ setupRequest: (req: any) => ({ ...req, body: bodies[i++ % bodies.length] }) }],
      } as any,
      (err: Error | null, r: any) => {
        if (err) return reject(err);
        resolve({ rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, total: r.requests.total });
      },
    );
  });
}

export async function run(): Promise<Record<string, unknown>> {
  // The home card system is another machine on site: the simulator runs in its own process here,
  // so the appliance's figures do not include serving its own usage records.
  const cfg = benchConfig();
  const keyFile = path.join(cfg.dir, 'state', 'soft-card.keys.json');
  const keys = { ...DEFAULT_KEY_INDEXES };
  const card = new ProfiledCard(await SoftCard.open(keyFile, keys), keys); // creates the key file both sides use
  const sim = await startChild<{ url: string }>(path.join(here, '../tools/simulator/main.ts'), ['--listen', '127.0.0.1:0', '--key-file', keyFile]);
  const cfgFile = benchConfig((doc) => {
    doc.stateDir = path.join(cfg.dir, 'state');
    doc.simulator.enabled = false;
    doc.upstream.url = sim.info.url;
  }).file;
  const appliance = await startChild<{ url: string; keyFile: string }>(path.join(here, 'fixtures/appliance-server.ts'), [cfgFile]);
  const bare = await startChild<{ url: string }>(path.join(here, 'fixtures/bare-server.ts'));
  try {
    const expiresAt = new Date(Date.now() + 3600_000);
    const bodies: string[] = [];
    for (let n = 0; n < CODES; n++) {
      const idNo = `35032219900820${String(n % 10000).padStart(4, '0')}`;
      bodies.push(JSON.stringify({ ehealth_code: await issueHealthCode(card, { identity: { idType: '01', idNo }, ehcappid: '3502A0001APPA0001', expiresAt: new Date(expiresAt.getTime() + n * 1000) }) }));
    }
    const auth = { authorization: 'Bearer demo-his-key-change-me-0001' };
    // warm-up
    await load(appliance.info.url, bodies, { connections: 50 }, auth);
    const satVerify = await load(appliance.info.url, bodies, { connections: 1000 }, auth);
    const satBare = await load(bare.info.url, bodies, { connections: 1000 }, {});
    const fixedVerify = await load(appliance.info.url, bodies, { connections: 100, overallRate: 1000 }, auth);
    const fixedBare = await load(bare.info.url, bodies, { connections: 100, overallRate: 1000 }, {});
    const result = {
      seconds_per_run: SECONDS,
      saturation_1000_connections: { verify: satVerify, bare: satBare, throughput_ratio: +(satVerify.rps / satBare.rps).toFixed(3) },
      fixed_1000_rps: { verify: fixedVerify, bare: fixedBare, p99_ratio: +(fixedVerify.p99 / Math.max(fixedBare.p99, 1)).toFixed(3) },
    };
    return result;
  } finally {
    await appliance.stop();
    await bare.stop();
    await sim.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(JSON.stringify(await run(), null, 2));
}
