/**
 * The integrator examples are code, not prose: the Java client (docs/integration/java) is compiled and
 * run here — its webhook check against signatures made by the appliance's signer, its verify call
 * against a real appliance. It is an implementation of HMAC-SM3 of its own (BouncyCastle), so the two
 * sides are independent. The C# example is shown only (no .NET SDK in this project's package sources).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { needs } from './helpers/skip.ts';
import { tempDir } from './helpers/tmp.ts';
import { testAppliance, API_KEY } from './helpers/appliance.ts';
import { signWebhook } from '../src/webhook/sign.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';

const BC = '/usr/share/java/bcprov.jar';
const javacMissing = spawnSync('javac', ['-version']).status !== 0 ? 'javac is not installed (a JDK: apt-get install default-jdk-headless)' : undefined;
const java = needs(javacMissing ?? (existsSync(BC) ? undefined : `${BC} is missing (apt-get install libbcprov-java; .ci/run installs it)`));

java('Java example: compiles; its webhook check accepts the appliance\'s signature and refuses a tampered body; its verify call gets 0000', async () => {
  const t = tempDir('ehc-java-');
  try {
    const src = path.resolve('docs/integration/java/EhcEdgeClient.java');
    const javac = spawnSync('javac', ['-cp', BC, '-d', t.dir, src], { encoding: 'utf8' });
    assert.is(javac.status, 0, javac.stderr);
    const run = (...args: string[]) => spawnSync('java', ['-cp', `${BC}:${t.dir}`, 'EhcEdgeClient', ...args], { encoding: 'utf8' });
    const secret = 'webhook-secret-for-tests-0001';
    const body = JSON.stringify({ event: 'result', station: 'desk-1', user_name: '陈俊海' });
    const h = signWebhook(secret, 'delivery-42', body);
    const file = path.join(t.dir, 'body.json');
    writeFileSync(file, body);
    assert.is(run('check', secret, h['x-ehc-delivery']!, h['x-ehc-timestamp']!, h['x-ehc-signature']!, file).stdout.trim(), 'ok');
    writeFileSync(file, body.replace('desk-1', 'desk-2'));
    assert.is(run('check', secret, h['x-ehc-delivery']!, h['x-ehc-timestamp']!, h['x-ehc-signature']!, file).stdout.trim(), 'bad-signature');
    const old = signWebhook(secret, 'delivery-43', body, Date.now() - 600_000);
    writeFileSync(file, body);
    assert.is(run('check', secret, old['x-ehc-delivery']!, old['x-ehc-timestamp']!, old['x-ehc-signature']!, file).stdout.trim(), 'stale-timestamp');

    const a = await testAppliance();
    try {
      const code = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode({ idType: '01', idNo: '350322199008207715' }, { expiresAt: new Date(Date.now() + 300_000) });
      // spawnSync would block this process's event loop (and so the appliance): run java asynchronously
      const { spawn } = await import('node:child_process');
      const out = await new Promise<string>((resolve) => {
        const p = spawn('java', ['-cp', `${BC}:${t.dir}`, 'EhcEdgeClient', 'verify', a.appliance.url, API_KEY, code]);
        let s = '';
        p.stdout.on('data', (c: Buffer) => (s += c.toString('utf8')));
        p.on('close', () => resolve(s));
      });
      assert.match(out, /^200 /);
      assert.match(out, /"ret_code":"0000"/);
    } finally {
      await a.stop();
    }
  } finally {
    t.cleanup();
  }
});

test.run();
