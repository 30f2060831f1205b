import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { MAC_KEY_LABEL } from '../src/crypto/mac-key.ts';
import path from 'node:path';
import { sm2 } from 'sm-crypto-v2';
import { SoftCard, writeKeyFile, generateSoftKeys } from '../src/crypto/soft-card.ts';
import { ProfiledCard } from '../src/crypto/profiled-card.ts';
import { DEFAULT_KEY_INDEXES } from '../src/crypto/card.ts';
import { formatCst, parseCst } from '../src/platform/time.ts';
import { pkcs7Pad, pkcs7Unpad } from '../src/platform/pkcs7.ts';
import { EhcError } from '../src/errors.ts';
import { pooledRandomBytes } from '../src/platform/random-pool.ts';
import { tempDir } from './helpers/tmp.ts';
import { SimCardSystem } from '../demo/simulator/card-system.ts';

const keys = { ...DEFAULT_KEY_INDEXES };

async function rejects(p: Promise<unknown>, code: string) {
  try {
    await p;
  } catch (err) {
    assert.instance(err, EhcError);
    assert.is((err as EhcError).code, code, (err as Error).message);
    return;
  }
  assert.unreachable(`expected EhcError ${code}`);
}

test('first open creates a 0600 key file with random keys; a second open reads the same keys', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'state', 'keys.json');
    const a = new ProfiledCard(await SoftCard.open(file, keys), keys);
    assert.is(statSync(file).mode & 0o777, 0o600);
    const ehcid = await a.issueEhcid({ idType: '01', idNo: '350322199008207715' });
    assert.match(ehcid, /^[0-9A-F]{64}$/);
    const b = new ProfiledCard(await SoftCard.open(file, keys), keys);
    assert.equal(await b.decryptEhcid(ehcid), { idType: '01', idNo: '350322199008207715' });
    const other = path.join(dir, 'other.json');
    const c = new ProfiledCard(await SoftCard.open(other, keys), keys);
    await rejects(c.decryptEhcid(ehcid), '2002');
  } finally {
    cleanup();
  }
});

test('a key file readable by group or others is refused with a message naming the fix', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'keys.json');
    writeKeyFile(file, generateSoftKeys());
    chmodSync(file, 0o640);
    try {
      await SoftCard.open(file, keys);
      assert.unreachable('should refuse');
    } catch (err) {
      assert.is((err as EhcError).code, '8008');
      assert.match((err as Error).message, /chmod 600/);
    }
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ ...generateSoftKeys(), ehcid: 'xyz' }), { mode: 0o600 });
    await rejects(SoftCard.open(path.join(dir, 'bad.json'), keys), '8008');
  } finally {
    cleanup();
  }
});

test('default profile: EHCID is SM4-ECB/PKCS#7 of ASCII idType+idNo; VALID of 7 BCD bytes (CST)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'keys.json');
    const material = { ...generateSoftKeys(), ehcid: '0123456789abcdeffedcba9876543210' };
    writeKeyFile(file, material);
    const card = new ProfiledCard(await SoftCard.open(file, keys), keys);
    // GB/T 32907 SM4 example: key = plaintext = 0123456789ABCDEFFEDCBA9876543210 → 681EDF34D206965E86B3E94F536E4246
    const block = await card.sm4Encrypt(keys.ehcid, Buffer.from('0123456789abcdeffedcba9876543210', 'hex'));
    assert.is(block.toString('hex'), '681edf34d206965e86b3e94f536e4246');
    const ehcid = await card.issueEhcid({ idType: '01', idNo: '11010519491231002X' });
    const plain = pkcs7Unpad(await card.sm4Decrypt(keys.ehcid, Buffer.from(ehcid, 'hex')));
    assert.is(plain?.toString('ascii'), '0111010519491231002X');
    const at = new Date('2018-01-17T03:50:03Z'); // 11:50:03 CST
    const valid = await card.issueValidity(at);
    assert.match(valid, /^[0-9A-F]{32}$/);
    const bcd = pkcs7Unpad(await card.sm4Decrypt(keys.validity, Buffer.from(valid, 'hex')));
    assert.is(bcd?.toString('hex'), '20180117115003');
    assert.is((await card.decryptValidity(valid)).toISOString(), at.toISOString());
    await rejects(card.decryptValidity(''), '2003');
    await rejects(card.decryptValidity('ZZ'), '2004');
    await rejects(card.decryptValidity(ehcid), '2004');
    const flipped = (valid[0] === 'A' ? 'B' : 'A') + valid.slice(1);
    await rejects(card.decryptValidity(flipped), '2004');
    await rejects(card.decryptEhcid(ehcid.slice(0, 40)), '2002');
  } finally {
    cleanup();
  }
});

test('the simulator\'s card system and the card, on the same keys, write the same EHCID and VALID and refuse the same fields alike', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'keys.json');
    writeKeyFile(file, generateSoftKeys());
    const card = new ProfiledCard(await SoftCard.open(file, keys), keys);
    const sim = new SimCardSystem({ ehcin: '3502A0001', keyFile: file });
    const id = { idType: '01', idNo: '11010519491231002X' };
    const at = new Date('2031-01-01T00:00:00Z');
    const ehcid = await card.issueEhcid(id);
    const valid = await card.issueValidity(at);
    assert.is(sim.issueEhcid(id), ehcid);
    assert.is(sim.issueValidity(at), valid);
    assert.equal(sim.decryptEhcid(ehcid), id);
    assert.is(sim.decryptValidity(valid).toISOString(), at.toISOString());
    const refusal = async (f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        return `${(err as EhcError).code} ${(err as Error).message}`;
      }
      return 'accepted';
    };
    const flipped = (valid[0] === 'A' ? 'B' : 'A') + valid.slice(1);
    for (const bad of ['zz', ehcid.slice(0, 40), '00'.repeat(16), valid]) {
      assert.is(await refusal(() => sim.decryptEhcid(bad)), await refusal(() => card.decryptEhcid(bad)), `EHCID ${bad}`);
    }
    for (const bad of ['', 'ZZ', ehcid, flipped]) {
      assert.is(await refusal(() => sim.decryptValidity(bad)), await refusal(() => card.decryptValidity(bad)), `VALID ${bad}`);
    }
  } finally {
    cleanup();
  }
});

test('CST time helpers and PKCS#7 reject what is not real', () => {
  assert.is(formatCst(new Date('2018-12-27T14:32:22Z')), '20181227223222');
  assert.is(parseCst('20181227223222')?.toISOString(), '2018-12-27T14:32:22.000Z');
  assert.is(parseCst('20180230120000'), null);
  assert.is(parseCst('2018123'), null);
  assert.equal(pkcs7Pad(Buffer.alloc(16)).length, 32);
  assert.is(pkcs7Unpad(Buffer.alloc(16)), null);
  assert.is(pkcs7Unpad(Buffer.alloc(15, 1)), null);
});

test('SM2: the GM/T 0003.5 published signature verifies; our DER signatures verify with ZA and default user ID', async () => {
  // GM/T 0003.5 example on the recommended curve: message "message digest", user ID 1234567812345678
  const sk = '3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8';
  const r = 'F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3';
  const s = 'B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA';
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'keys.json');
    writeKeyFile(file, { ...generateSoftKeys(), sm2: { private: sk, public: '' } });
    const card = new ProfiledCard(await SoftCard.open(file, keys), keys);
    const pub = await card.sm2PublicKey(keys.sign);
    assert.is(pub.toString('hex').toUpperCase(), '0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13');
    const msg = Buffer.from('message digest');
    assert.ok(sm2.doVerifySignature(msg, (r + s).toLowerCase(), pub.toString('hex'), { hash: true }), 'published vector');
    assert.not.ok(sm2.doVerifySignature(Buffer.from('message digesT'), (r + s).toLowerCase(), pub.toString('hex'), { hash: true }));
    const der = await card.sm2Sign(keys.sign, msg);
    assert.is(der[0], 0x30, 'DER SEQUENCE');
    assert.ok(await card.sm2Verify(keys.sign, msg, der));
    assert.not.ok(await card.sm2Verify(keys.sign, Buffer.from('other'), der));
    // the published (r,s) in DER form also verifies through the card's own verify
    const int = (h: string) => { const b = Buffer.from(h, 'hex'); return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0x02, b.length + 1, 0]), b]) : Buffer.concat([Buffer.from([0x02, b.length]), b]); };
    const body = Buffer.concat([int(r), int(s)]);
    assert.ok(await card.sm2Verify(keys.sign, msg, Buffer.concat([Buffer.from([0x30, body.length]), body])));
    assert.ok(readFileSync(file, 'utf8').includes(sk));
  } finally {
    cleanup();
  }
});

test('SM3 and HMAC-SM3 through the card match the GB/T 32905 example', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const card = new ProfiledCard(await SoftCard.open(path.join(dir, 'k.json'), keys), keys);
    assert.is((await card.sm3(Buffer.from('abc'))).toString('hex'), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
    const mac = await card.hmacSm3(keys.mac, Buffer.from('abc'));
    assert.is(mac.length, 32);
    await card.close();
    await rejects(card.sm4Encrypt(keys.ehcid, Buffer.alloc(16)), '8008');
    assert.is((await card.health()).ok, false);
  } finally {
    cleanup();
  }
});

test('SoftCard reuses one SM4-ECB context per key: answers equal fresh contexts, odd inputs never disturb it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'k.json');
    const card = await SoftCard.open(file, keys);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    const fresh = (role: string, data: Buffer, decrypt = false) => {
      const c = (decrypt ? createDecipheriv : createCipheriv)('sm4-ecb', Buffer.from(doc[role]!, 'hex'), null);
      c.setAutoPadding(false);
      return Buffer.concat([c.update(data), c.final()]).toString('hex');
    };
    for (let i = 0; i < 50; i++) {
      const data = pooledRandomBytes(16 * (1 + (i % 4)));
      const enc = await card.sm4Encrypt(keys.ehcid, data);
      assert.is(enc.toString('hex'), fresh('ehcid', data));
      assert.is((await card.sm4Decrypt(keys.validity, data)).toString('hex'), fresh('validity', data, true));
      assert.equal(await card.sm4Decrypt(keys.ehcid, enc), data);
      // a partial block is refused before it reaches the shared context…
      await rejects(card.sm4Decrypt(keys.ehcid, Buffer.concat([data, Buffer.alloc(1 + (i % 15))])), "8008");
    }
    // …so the next whole-block call still gets exactly its own blocks back
    const block = Buffer.alloc(16, 7);
    assert.is((await card.sm4Encrypt(keys.ehcid, block)).toString('hex'), fresh('ehcid', block));
    // HMAC-SM3 under the derived key stays the same across calls (the derived key is cached)
    const derived = Buffer.from(fresh('mac', Buffer.from(MAC_KEY_LABEL)), 'hex');
    const expected = createHmac('sm3', derived).update('abc').digest('hex');
    assert.is((await card.hmacSm3(keys.mac, Buffer.from('abc'))).toString('hex'), expected);
    assert.is((await card.hmacSm3(keys.mac, Buffer.from('abc'))).toString('hex'), expected);
    await card.close();
    await rejects(card.hmacSm3(keys.mac, Buffer.from('abc')), '8008');
    await rejects(card.sm4Decrypt(keys.ehcid, block), '8008');
  } finally {
    cleanup();
  }
});

test('pooled random bytes: right lengths, fresh copies, no repeats across refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const b = pooledRandomBytes(16);
    assert.is(b.length, 16);
    const hex = b.toString('hex');
    assert.not.ok(seen.has(hex), 'a 16-byte draw repeated');
    seen.add(hex);
  }
  const a = pooledRandomBytes(8);
  const copy = Buffer.from(a);
  pooledRandomBytes(4096); // large draws bypass the pool
  for (let i = 0; i < 600; i++) pooledRandomBytes(8); // force a refill
  assert.equal(a, copy, 'a returned buffer is not overwritten by later refills');
});

test.run();
