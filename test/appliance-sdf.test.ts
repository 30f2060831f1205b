/**
 * The whole appliance on the SDF card (real addon + softsdf): local verification through the card;
 * the card failing, refusing, losing its library — clear /v1/status, spec return codes, the process
 * keeps answering what it can (cross-domain codes), and local verification comes back with the card.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { issueHealthCode } from '../src/crypto/issue-code.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { SimCardSystem } from '../demo/simulator/index.ts';
import { API_KEY, testAppliance } from './helpers/appliance.ts';
import { built, cardFixture, SOFTSDF_PATH, withEnv } from './helpers/softsdf.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/tmp.ts';

const person = { idType: '01', idNo: '350322199008207715' };
const soon = () => new Date(Date.now() + 300_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!built.ok) {
  console.log(`appliance-sdf: skipping: ${built.why}`);
  test.skip(`appliance on the SDF card skipped: ${built.why}`, () => undefined);
} else {
  test('appliance on the SDF card: verifies locally; card failures are statuses and 8008/2005, never a crash', async () => {
    const keysDir = tempDir('ehc-sdf-keys-');
    const f = cardFixture(keysDir.dir);
    const library = path.join(keysDir.dir, 'libvendor-sdf.so');
    copyFileSync(SOFTSDF_PATH, library);
    const issuer = new ProfiledCard(await SoftCard.open(f.softKeyFile, f.keys), f.keys);
    const a = await testAppliance((doc) => {
      doc.card = { driver: 'sdf', sdf: { ...f.sdf, library, sessions: 2, retryMs: 100 } };
    });
    const status = async () =>
      (await (await fetch(`${a.appliance.url}/v1/status`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { card: { ok: boolean; detail: string; driver: string; device?: Record<string, unknown> } };
    try {
      const local = await issueHealthCode(issuer, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: soon() });
      const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode(person, { expiresAt: soon() });
      const ok = await a.post({ ehealth_code: local });
      assert.is(ok.status, 200, JSON.stringify(ok.body));
      assert.is(ok.body.decided_by, 'local');
      assert.is(ok.body.id_no, person.idNo);
      const s0 = await status();
      assert.equal([s0.card.ok, s0.card.driver, s0.card.detail, s0.card.device?.name], [true, 'sdf', 'ready', 'SOFTSDF']);

      // the card refuses this input → 2005
      const refused = await withEnv({ SOFTSDF_FAIL: 'SDF_Decrypt:SDR_SYMOPERR' }, () => a.post({ ehealth_code: local }));
      assert.is(refused.body.ret_code, '2005');
      assert.match(String(refused.body.ret_msg), /SDR_SYMOPERR/);

      // the card is pulled out → 8008, status says so, cross-domain codes still verify
      await withEnv({ SOFTSDF_FAIL: '*:SDR_COMMFAIL' }, async () => {
        const down = await a.post({ ehealth_code: local });
        assert.is(down.status, 503);
        assert.is(down.body.ret_code, '8008');
        const s1 = await status();
        assert.is(s1.card.ok, false);
        assert.match(s1.card.detail, /SDR_COMMFAIL/);
        const cross = await a.post({ ehealth_code: foreign });
        assert.is(cross.status, 200);
        assert.is(cross.body.decided_by, 'cross-domain');
      });
      // back in: local verification resumes by itself
      await sleep(150);
      assert.is((await status()).card.ok, true);
      assert.is((await a.post({ ehealth_code: local })).body.decided_by, 'local');

      // the library file disappears and the card fails: the status names the library problem
      rmSync(library);
      await withEnv({ SOFTSDF_FAIL: '*:SDR_HARDFAIL' }, async () => {
        assert.is((await a.post({ ehealth_code: local })).body.ret_code, '8008');
      });
      await sleep(150);
      const s2 = await status();
      assert.is(s2.card.ok, false);
      assert.match(s2.card.detail, /library not loadable: cannot load .*libvendor-sdf.so: ENOENT/);
      assert.is((await a.post({ ehealth_code: local })).body.ret_code, '8008');
      copyFileSync(SOFTSDF_PATH, library);
      await sleep(150);
      assert.is((await a.post({ ehealth_code: local })).body.decided_by, 'local');
      assert.ok(a.log.lines.some((l) => l.includes('crypto card failed; will reopen')), 'the failure is logged');
      assert.ok(!a.log.lines.join('\n').includes(person.idNo), 'no clear ID number in the log');
    } finally {
      await a.stop();
      await issuer.close();
      keysDir.cleanup();
    }
  });

  test('degraded start: a card whose keys are missing does not stop the appliance; it says why, answers 8008 locally, verifies foreign codes upstream, and comes up once the keys are there', async () => {
    const keysDir = tempDir('ehc-sdf-keys-');
    const f = cardFixture(keysDir.dir);
    const issuer = new ProfiledCard(await SoftCard.open(f.softKeyFile, f.keys), f.keys);
    // the vendor's tool has not yet put the card's encryption key pair in: no envelope can be opened
    const full = readFileSync(f.sdfKeyFile, 'utf8');
    writeFileSync(f.sdfKeyFile, full.split('\n').filter((l) => !l.startsWith('sm2enc ')).join('\n'));
    const a = await testAppliance((doc) => {
      doc.card = { driver: 'sdf', sdf: { ...f.sdf, sessions: 2, retryMs: 100 } };
      // the audit's MAC key is on the card: with it down no record can be signed, so under the default
      // audit.onFailure = refuse an identity answer is withheld (test/audit-diskfull.test.ts); answering
      // foreign codes meanwhile is the site's explicit choice
      doc.audit = { onFailure: 'continue' };
    });
    const get = async (p: string) => (await fetch(`${a.appliance.url}${p}`, { headers: { authorization: `Bearer ${API_KEY}` } }));
    try {
      const status = (await (await get('/v1/status')).json()) as { card: { ok: boolean; detail: string } };
      assert.is(status.card.ok, false);
      assert.match(status.card.detail, /keys not loadable: key ehcid \(index 1\): SDF_ImportKeyWithISK_ECC failed: SDR_KEYNOTEXIST/);
      const health = await get('/v1/health');
      assert.is(health.status, 503);
      const hb = (await health.json()) as { status: string; checks: { card: boolean }; down: { card: string } };
      assert.equal([hb.status, hb.checks.card], ['unavailable', false]);
      assert.match(hb.down.card, /keys not loadable: key ehcid \(index 1\)/);
      const local = await issueHealthCode(issuer, { identity: person, ehcappid: '3502A0001APPA0001', expiresAt: soon() });
      const down = await a.post({ ehealth_code: local });
      assert.is(down.body.ret_code, '8008');
      const foreign = new SimCardSystem({ ehcin: a.config.simulator.ehcin! }).issueCode(person, { expiresAt: soon() });
      const cross = await a.post({ ehealth_code: foreign });
      assert.is(cross.status, 200, JSON.stringify(cross.body));
      assert.is(cross.body.decided_by, 'cross-domain');
      // the key pair is loaded: the card is retried and local verification starts by itself
      writeFileSync(f.sdfKeyFile, full);
      await sleep(150);
      assert.is(((await (await get('/v1/status')).json()) as { card: { ok: boolean } }).card.ok, true);
      const ok = await a.post({ ehealth_code: local });
      assert.is(ok.body.decided_by, 'local', JSON.stringify(ok.body));
    } finally {
      await a.stop();
      await issuer.close();
      keysDir.cleanup();
    }
  });
}

test.run();
