/**
 * firmware-bridge through the real addon and softsdf: statuses instead of crashes (unloadable library,
 * missing symbols, absent device, device removed mid-run, library deleted at run time), the SDR error
 * mapping to 8008/2005, the event loop kept free, closing with calls in flight, the quirk table
 * (32-byte ECC fields), keys imported under a KEK, and private-key access passwords.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { SdfDevice, SdfError, SessionPool } from '../firmware-bridge/index.ts';
import { SdfCard } from '../src/crypto/sdf-card.ts';
import { openCard } from '../src/crypto/open-card.ts';
import { parseConfig } from '../src/config/load.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { SoftCard } from '../src/crypto/soft-card.ts';
import { EhcError } from '../src/errors.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { wrapKey, wrapKeyCbc } from '../tools/card-keys.ts';
import { built, cardFixture, DEMO_KEK, quietLog, SOFTSDF_ECC32_PATH, SOFTSDF_PATH, SOFTSDF_VENDOR_PATH, withEnv } from './helpers/softsdf.ts';
import { tempDir } from './helpers/tmp.ts';

async function failure(p: Promise<unknown>): Promise<EhcError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, EhcError, String(err));
    return err as EhcError;
  }
  throw new Error('expected an EhcError');
}

const cardFixtureKey = (role: 'ehcid' | 'validity' | 'storage' | 'mac') =>
  ({ ehcid: '0123456789abcdeffedcba9876543210', validity: '00112233445566778899aabbccddeeff', storage: 'a1a2a3a4a5a6a7a8a9aaabacadaeaf00', mac: 'f0e1d2c3b4a5968778695a4b3c2d1e0f' })[role];
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('session pool: one call per session, FIFO beyond the pool, close waits for accepted calls', async () => {
  const pool = new SessionPool(['a', 'b']);
  const running = new Set<string>();
  let maxParallel = 0;
  const order: number[] = [];
  const calls = Array.from({ length: 6 }, (_, i) =>
    pool.use(async (s) => {
      assert.not.ok(running.has(s), 'a session is never used twice at once');
      running.add(s);
      maxParallel = Math.max(maxParallel, running.size);
      await sleep(2);
      running.delete(s);
      order.push(i);
      return i;
    }),
  );
  const closed = pool.close();
  let rejected = false;
  await pool.use(async () => 0).catch(() => (rejected = true));
  assert.ok(rejected, 'no new calls once closing');
  assert.equal(await Promise.all(calls), [0, 1, 2, 3, 4, 5]);
  assert.equal(await closed, ['a', 'b']);
  assert.is(maxParallel, 2);
  assert.is(pool.pending, 0);
});

if (!built.ok) {
  console.log(`sdf-bridge: skipping the addon/softsdf tests: ${built.why}`);
  test.skip(`addon/softsdf tests skipped: ${built.why}`, () => undefined);
} else {
  test('an unloadable library is a status, not a crash: health says why, calls answer 8008', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const corrupt = path.join(dir, 'libcorrupt.so');
      writeFileSync(corrupt, 'this is not an ELF file');
      for (const library of [corrupt, path.join(dir, 'missing.so')]) {
        const log = memoryLogger();
        const card = await SdfCard.open({ library }, f.keys, log, { retryMs: 60_000 });
        const h = await card.health();
        assert.not.ok(h.ok);
        assert.match(h.detail, /library not loadable/);
        assert.ok(h.detail.includes(library), h.detail);
        const e = await failure(new ProfiledCard(card, f.keys).decryptEhcid('00'.repeat(16)));
        assert.is(e.code, '8008');
        assert.match(e.message, /crypto card unavailable: library not loadable/);
        assert.ok(log.lines.some((l) => l.includes('crypto card unavailable')), 'a log line says so');
        await card.close();
      }
    } finally {
      cleanup();
    }
  });

  test('a library without the required SDF functions is refused by name', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const src = path.join(dir, 'stub.c');
      writeFileSync(src, 'int SDF_OpenDevice(void **h) { *h = 0; return 0; }\n');
      const so = path.join(dir, 'libstub.so');
      const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', so, src], { encoding: 'utf8' });
      assert.is(cc.status, 0, cc.stderr);
      const card = await SdfCard.open({ library: so }, f.keys, quietLog);
      const h = await card.health();
      assert.not.ok(h.ok);
      assert.match(h.detail, /not a usable SDF library: .*lacks required SDF functions: SDF_CloseDevice, SDF_OpenSession/);
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('device absent (SDR_OPENDEVICE) is a status; the card comes up once the device is there', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const { card, h } = await withEnv({ SOFTSDF_KEYFILE: undefined }, async () => {
        const card = await SdfCard.open({ ...f.sdf, sessions: 2 }, f.keys, quietLog, { retryMs: 20 });
        return { card, h: await card.health() };
      });
      assert.not.ok(h.ok);
      assert.match(h.detail, /device absent or not openable \(SDF_OpenDevice: SDR_OPENDEVICE\)/);
      await sleep(30);
      const back = await card.health();
      assert.ok(back.ok, back.detail);
      assert.is(back.device?.name, 'SOFTSDF');
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('SDR codes map once: input refusals → 2005, service problems → 8008, with SDR name, code and function', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const card = new ProfiledCard(await SdfCard.open({ ...f.sdf, sessions: 2 }, f.keys, quietLog), f.keys);
      const ehcid = await card.issueEhcid({ idType: '01', idNo: '350322199008207715' });
      const refused = await withEnv({ SOFTSDF_FAIL: 'SDF_Decrypt:SDR_SYMOPERR' }, () => failure(card.decryptEhcid(ehcid)));
      assert.is(refused.code, '2005');
      assert.match(refused.message, /SDF_Decrypt failed: SDR_SYMOPERR \(0x0100000F\)/);
      const cause = refused.cause as SdfError;
      assert.instance(cause, SdfError);
      assert.equal([cause.sdr, cause.code, cause.fn], ['SDR_SYMOPERR', 0x0100000f, 'SDF_Decrypt']);
      const badInput = await withEnv({ SOFTSDF_FAIL: 'SDF_Decrypt:SDR_INARGERR' }, () => failure(card.decryptEhcid(ehcid)));
      assert.is(badInput.code, '2005', 'a data function refusing this input');
      const missing = await failure(card.sm4Encrypt(200, Buffer.alloc(16)));
      assert.is(missing.code, '8008');
      assert.match(missing.message, /key index 200 has no source in the config/);
      const numeric = await withEnv({ SOFTSDF_FAIL: 'SDF_HashInit:0x01000009' }, () => failure(card.sm3(Buffer.from('abc'))));
      assert.is(numeric.code, '8008');
      assert.match(numeric.message, /SDF_HashInit failed: SDR_ALGNOTSUPPORT/);
      // none of these took the card down
      assert.ok((await card.health()).ok);
      assert.equal(await card.decryptEhcid(ehcid), { idType: '01', idNo: '350322199008207715' });
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('device removed mid-run: calls answer 8008, health says so, the card reopens when it is back', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const log = memoryLogger();
      const card = new ProfiledCard(await SdfCard.open({ ...f.sdf, sessions: 4 }, f.keys, log, { retryMs: 20 }), f.keys);
      const ehcid = await card.issueEhcid({ idType: '01', idNo: '11010519491231002X' });
      await withEnv({ SOFTSDF_FAIL: '*:SDR_COMMFAIL' }, async () => {
        const burst = await Promise.allSettled(Array.from({ length: 20 }, () => card.decryptEhcid(ehcid)));
        for (const r of burst) {
          assert.is(r.status, 'rejected');
          const e = (r as PromiseRejectedResult).reason as EhcError;
          assert.is(e.code, '8008');
        }
        const h = await card.health();
        assert.not.ok(h.ok);
        assert.match(h.detail, /device failed|device error|SDR_COMMFAIL/);
        await sleep(30);
        assert.not.ok((await card.health()).ok, 'still out while the card is gone');
      });
      assert.ok(log.lines.some((l) => l.includes('crypto card failed; will reopen')));
      await sleep(30);
      const h = await card.health();
      assert.ok(h.ok, h.detail);
      assert.equal(await card.decryptEhcid(ehcid), { idType: '01', idNo: '11010519491231002X' });
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('library file deleted at run time: the loaded card keeps working; a reopen reports it, a restore recovers', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const lib = path.join(dir, 'libvendor.so');
      copyFileSync(SOFTSDF_PATH, lib);
      const card = new ProfiledCard(await SdfCard.open({ ...f.sdf, library: lib, sessions: 2 }, f.keys, quietLog, { retryMs: 20 }), f.keys);
      const ehcid = await card.issueEhcid({ idType: '01', idNo: '350322199008207715' });
      rmSync(lib);
      assert.equal(await card.decryptEhcid(ehcid), { idType: '01', idNo: '350322199008207715' }, 'mapped code stays usable');
      await withEnv({ SOFTSDF_FAIL: '*:SDR_HARDFAIL' }, async () => {
        assert.is((await failure(card.decryptEhcid(ehcid))).code, '8008');
      });
      await sleep(30);
      const h = await card.health();
      assert.not.ok(h.ok);
      assert.match(h.detail, /library not loadable: cannot load .*libvendor.so: ENOENT/);
      copyFileSync(SOFTSDF_PATH, lib);
      await sleep(30);
      assert.ok((await card.health()).ok);
      assert.equal(await card.decryptEhcid(ehcid), { idType: '01', idNo: '350322199008207715' });
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('card calls never block the event loop: timers keep firing while a slow card works', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const card = await SdfCard.open({ ...f.sdf, sessions: 2 }, f.keys, quietLog);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      await withEnv({ SOFTSDF_DELAY_MS: '150' }, () => card.sm4Encrypt(f.keys.storage, Buffer.alloc(16)));
      clearInterval(timer);
      assert.ok(ticks >= 3, `the loop ran ${ticks} timer callbacks during one 150 ms card call`);
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('closing with calls in flight: accepted calls finish, later calls get 8008, nothing crashes', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const soft = new ProfiledCard(await SoftCard.open(f.softKeyFile, f.keys), f.keys);
      const card = new ProfiledCard(await SdfCard.open({ ...f.sdf, sessions: 3 }, f.keys, quietLog), f.keys);
      const ehcid = await soft.issueEhcid({ idType: '01', idNo: '350322199008207715' });
      const inflight = Array.from({ length: 300 }, () => card.decryptEhcid(ehcid));
      const closing = card.close();
      const late = await failure(card.decryptEhcid(ehcid));
      assert.is(late.code, '8008');
      const results = await Promise.all(inflight);
      assert.is(results.length, 300);
      for (const r of results) assert.is(r.idNo, '350322199008207715');
      await closing;
      assert.not.ok((await card.health()).ok);
      // and at the device level: close() twice is fine, calls after close are ECLOSED
      const device = await SdfDevice.open({ library: SOFTSDF_PATH, sessions: 2 });
      const pending = device.random(8);
      await Promise.all([device.close(), device.close()]);
      assert.is((await pending).length, 8);
      try {
        await device.random(8);
        assert.unreachable('closed');
      } catch (err) {
        assert.is((err as SdfError).sdr, 'ECLOSED');
      }
    } finally {
      cleanup();
    }
  });

  test('quirk table: a library with 32-byte ECC fields works with quirks "ecc32" (same key, same answers)', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const std = await SdfCard.open(f.sdf, f.keys, quietLog);
      // the envelopes go through ECCCipher too: laid out with 32-byte fields for this library
      const e32 = await SdfCard.open({ ...f.sdf, library: SOFTSDF_ECC32_PATH, quirks: 'ecc32' }, f.keys, quietLog);
      assert.ok((await e32.health()).ok);
      assert.equal(await e32.sm4Encrypt(f.keys.ehcid, Buffer.alloc(16)), await std.sm4Encrypt(f.keys.ehcid, Buffer.alloc(16)));
      const pub = await std.sm2PublicKey(f.keys.sign);
      assert.equal(await e32.sm2PublicKey(f.keys.sign), pub);
      const msg = Buffer.from('quirks');
      assert.ok(await std.sm2Verify(f.keys.sign, msg, await e32.sm2Sign(f.keys.sign, msg)));
      assert.ok(await e32.sm2Verify(f.keys.sign, msg, await std.sm2Sign(f.keys.sign, msg)));
      // without the quirk, the 64-byte layout reads the wrong bytes: the export is not the key
      const wrong = await SdfCard.open({ ...f.sdf, library: SOFTSDF_ECC32_PATH }, f.keys, quietLog);
      assert.not.equal(await wrong.sm2PublicKey(f.keys.sign).catch(() => Buffer.alloc(0)), pub);
      await Promise.all([std.close(), e32.close(), wrong.close()]);
    } finally {
      cleanup();
    }
  });

  test('keys wrapped under the card KEK by a card system (SM4-ECB 16 bytes, SM4-CBC 48 bytes) give the same answers as envelopes', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const byEnvelope = new ProfiledCard(await SdfCard.open(f.sdf, f.keys, quietLog), f.keys);
      const roles = ['ehcid', 'validity', 'storage', 'mac'] as const;
      const ecb = Object.fromEntries(roles.map((r) => [r, wrapKey(DEMO_KEK, f.material[r])]));
      const cbc = Object.fromEntries(roles.map((r) => [r, wrapKeyCbc(DEMO_KEK, f.material[r], Buffer.alloc(16, roles.indexOf(r) + 1))]));
      const viaEcb = new ProfiledCard(await SdfCard.open({ library: SOFTSDF_PATH, kek: 40, kekAlg: 'sm4-ecb', wrappedKeys: ecb }, f.keys, quietLog), f.keys);
      const viaCbc = new ProfiledCard(await SdfCard.open({ library: SOFTSDF_PATH, kek: 40, kekAlg: 'sm4-cbc', wrappedKeys: cbc }, f.keys, quietLog), f.keys);
      const id = { idType: '01', idNo: '350322199008207715' };
      const expected = await byEnvelope.issueEhcid(id);
      assert.is(await viaEcb.issueEhcid(id), expected);
      assert.is(await viaCbc.issueEhcid(id), expected);
      assert.equal(await viaCbc.hmacSm3(f.keys.mac, Buffer.from('x')), await byEnvelope.hmacSm3(f.keys.mac, Buffer.from('x')));
      // ECB blobs handed to a CBC config (the wrap algorithm is data, and it is wrong here): down, by name
      const mixed = await SdfCard.open({ library: SOFTSDF_PATH, kek: 40, kekAlg: 'sm4-cbc', wrappedKeys: ecb }, f.keys, quietLog, { retryMs: 60_000 });
      assert.match((await mixed.health()).detail, /keys not loadable: key ehcid \(index 1\): SDF_ImportKeyWithKEK failed: SDR_INARGERR/);
      const wrongKek = await SdfCard.open({ library: SOFTSDF_PATH, kek: 41, wrappedKeys: ecb }, f.keys, quietLog, { retryMs: 60_000 });
      const e = await failure(wrongKek.sm4Encrypt(f.keys.ehcid, Buffer.alloc(16)));
      assert.is(e.code, '8008');
      assert.match(e.message, /SDF_ImportKeyWithKEK failed: SDR_KEYNOTEXIST/);
      await Promise.all([byEnvelope.close(), viaEcb.close(), viaCbc.close(), mixed.close(), wrongKek.close()]);
    } finally {
      cleanup();
    }
  });

  test('a failed key import at start is configuration (8008), whatever SDR code the library picks; the card is retried', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const card = await withEnv({ SOFTSDF_FAIL: 'SDF_ImportKeyWithISK_ECC:SDR_INARGERR' }, async () => {
        const card = await SdfCard.open({ ...f.sdf, sessions: 2 }, f.keys, quietLog, { retryMs: 20 });
        const h = await card.health();
        assert.not.ok(h.ok);
        assert.match(h.detail, /keys not loadable: key ehcid \(index 1\): SDF_ImportKeyWithISK_ECC failed: SDR_INARGERR/);
        const e = await failure(new ProfiledCard(card, f.keys).decryptEhcid('00'.repeat(16)));
        assert.is(e.code, '8008');
        return card;
      });
      await sleep(30);
      assert.ok((await card.health()).ok, 'retried and up once the import works');
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('quirk "sym-key-handle": keys by internal index only with a library that has the vendor extension', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir, (['ehcid', 'validity', 'storage', 'mac'] as const).map((r, i) => ({ kind: 'sym' as const, index: i + 1, key: cardFixtureKey(r) })));
      const byIndex = new ProfiledCard(await SdfCard.open({ library: SOFTSDF_VENDOR_PATH, quirks: 'sym-key-handle' }, f.keys, quietLog), f.keys);
      const byEnvelope = new ProfiledCard(await SdfCard.open(f.sdf, f.keys, quietLog), f.keys);
      const id = { idType: '01', idNo: '350322199008207715' };
      assert.is(await byIndex.issueEhcid(id), await byEnvelope.issueEhcid(id));
      // the same quirk on the strict library: the extension is not there, and the card says so by name
      const strict = await SdfCard.open({ library: SOFTSDF_PATH, quirks: 'sym-key-handle' }, f.keys, quietLog);
      const e = await failure(strict.sm4Encrypt(f.keys.ehcid, Buffer.alloc(16)));
      assert.is(e.code, '8008');
      assert.match(e.message, /the library has no SDF_GetSymmKeyHandle/);
      // and without the quirk the extension is never used, even where it exists
      const std = await SdfCard.open({ library: SOFTSDF_VENDOR_PATH }, f.keys, quietLog);
      assert.match((await failure(std.sm4Encrypt(f.keys.ehcid, Buffer.alloc(16)))).message, /has no source in the config/);
      await Promise.all([byIndex.close(), byEnvelope.close(), strict.close(), std.close()]);
    } finally {
      cleanup();
    }
  });

  test('session open/close is serialised: cycles against softsdf (no lock around its session list) never crash', async () => {
    // in a child process: a corrupted heap there is a failed test, not a dead test runner.
    // 1 000 cycles of 8 parallel opens + 8 parallel closes here; the 10 000-cycle figure is in `npm run bench -- sdf`
    const { dir, cleanup } = tempDir();
    cardFixture(dir);
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'firmware-bridge/lib/session-cycles.ts'), SOFTSDF_PATH, '1000', '8'], { encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: '8' }, timeout: 120_000 });
    assert.is(r.signal, null, `the cycles process died by ${r.signal}: ${r.stderr}`);
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).errors, 0);
    cleanup();
  });

  test('private key access password: signing needs card.sdf.keyPassword when the card asks for one', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir, [{ kind: 'pin', index: 1, password: 'card-pin-123' }]);
      // the envelopes are opened with the encryption private key at the same index: it needs the password too
      const noPin = await SdfCard.open(f.sdf, f.keys, quietLog, { retryMs: 60_000 });
      assert.match((await noPin.health()).detail, /SDF_ImportKeyWithISK_ECC failed: SDR_PARDENY/);
      const denied = await failure(noPin.sm2Sign(f.keys.sign, Buffer.from('m')));
      assert.is(denied.code, '8008');
      const badPin = await SdfCard.open({ ...f.sdf, keyPassword: 'nope' }, f.keys, quietLog, { retryMs: 60_000 });
      assert.match((await badPin.health()).detail, /SDF_GetPrivateKeyAccessRight failed: SDR_PARDENY/);
      const signOnly = await SdfCard.open({ library: SOFTSDF_PATH, kek: 40, wrappedKeys: { ehcid: wrapKey(DEMO_KEK, f.material.ehcid) } }, f.keys, quietLog);
      assert.match((await failure(signOnly.sm2Sign(f.keys.sign, Buffer.from('m')))).message, /SDR_PARDENY/);
      await signOnly.close();
      const withPin = await SdfCard.open({ ...f.sdf, keyPassword: 'card-pin-123', sessions: 2 }, f.keys, quietLog);
      const sigs = await Promise.all(Array.from({ length: 6 }, () => withPin.sm2Sign(f.keys.sign, Buffer.from('m'))));
      for (const s of sigs) assert.ok(await withPin.sm2Verify(f.keys.sign, Buffer.from('m'), s));
      await Promise.all([noPin.close(), badPin.close(), withPin.close()]);
    } finally {
      cleanup();
    }
  });

  test('bad card.sdf config is refused at open with the key to fix', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const bad = await failure(SdfCard.open({ library: SOFTSDF_PATH, kek: 40, wrappedKeys: { ehcid: 'xyz' } }, f.keys, quietLog));
      assert.match(bad.message, /card.sdf.wrappedKeys.ehcid must be hex digits/);
      const badEnvelope = await failure(SdfCard.open({ library: SOFTSDF_PATH, envelopes: { mac: '00' } }, f.keys, quietLog));
      assert.match(badEnvelope.message, /card.sdf.envelopes.mac must be hex: the SM2 ciphertext/);
      const noKek = await failure(SdfCard.open({ library: SOFTSDF_PATH, wrappedKeys: { ehcid: '00'.repeat(16) } }, f.keys, quietLog));
      assert.match(noKek.message, /needs card.sdf.kek/);
    } finally {
      cleanup();
    }
  });

  test('a card that stops answering: the call times out with 8008, the card goes down and comes back', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const card = await SdfCard.open({ ...f.sdf, sessions: 2 }, f.keys, quietLog, { retryMs: 20, timeoutMs: 100 });
      const hung = await withEnv({ SOFTSDF_DELAY_MS: '400' }, () => failure(card.sm4Encrypt(f.keys.storage, Buffer.alloc(16))));
      assert.is(hung.code, '8008');
      assert.match(hung.message, /did not answer within 100 ms/);
      await sleep(450); // the stuck call returns; its session is released
      const h = await card.health();
      assert.ok(h.ok, h.detail);
      assert.is((await card.sm4Encrypt(f.keys.storage, Buffer.alloc(16))).length, 16);
      await card.close();
    } finally {
      cleanup();
    }
  });

  test('openCard picks the card from config: sdf through the bridge, soft from its key file', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = cardFixture(dir);
      const doc = JSON.parse(readFileSync(path.join(ROOT, 'appliance.config.json'), 'utf8'));
      const sdfConfig = parseConfig({ ...doc, stateDir: dir, card: { driver: 'sdf', sdf: { ...f.sdf, sessions: 2, quirks: 'standard' } } }, path.join(dir, 'a.json'));
      const log = memoryLogger();
      const sdf = await openCard(sdfConfig.card, log);
      assert.is(sdf.driver, 'sdf');
      const softConfig = parseConfig({ ...doc, stateDir: dir, card: { driver: 'soft', keyFile: f.softKeyFile } }, path.join(dir, 'a.json'));
      const soft = await openCard(softConfig.card, log);
      assert.is(soft.driver, 'soft');
      const id = { idType: '01', idNo: '350322199008207715' };
      assert.equal(await sdf.decryptEhcid(await soft.issueEhcid(id)), id);
      const down = parseConfig({ ...doc, stateDir: dir, card: { driver: 'sdf', sdf: { library: path.join(dir, 'nope.so') } } }, path.join(dir, 'a.json'));
      const downCard = await openCard(down.card, log);
      assert.not.ok((await downCard.health()).ok);
      assert.ok(log.lines.some((l) => l.includes('crypto card is down at start')));
      await Promise.all([sdf.close(), soft.close(), downCard.close()]);
    } finally {
      cleanup();
    }
  });
}

test.run();
