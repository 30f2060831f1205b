/**
 * Crypto library choice, measured: SM3 and SM4 in node:crypto (OpenSSL) against the pure-JS
 * sm-crypto and sm-crypto-v2; SM2 sign/verify (with ZA) in sm-crypto against sm-crypto-v2.
 * node:crypto has no real SM2 signature (its "SM2" key signs plain ECDSA without ZA), so it is not a candidate for SM2.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { sm2 as sm2v2, sm3 as sm3v2, sm4 as sm4v2 } from 'sm-crypto-v2';

const require = createRequire(import.meta.url);
const smCrypto = require('sm-crypto') as { sm2: any; sm3: (s: string) => string; sm4: { encrypt: (d: string, k: string, o?: object) => string } };

function opsPerSecond(fn: () => void, minMs = 400): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    elapsed = performance.now() - start;
  }
  return Math.round((n / elapsed) * 1000);
}

export async function run(): Promise<Record<string, unknown>> {
  const msg = JSON.stringify({ ehealth_code: 'C50EF5E2892CF29BDC2EFF37C4E9B36F1DA8BDC53B48F7AB5273E4D080CEFA08:0:7F4D9C5D163963FFF9BE8DEB29037A75::35020001001', out_verify_no: '495a8f3e994f41718b60b7f692fa37af' });
  const key = randomBytes(16);
  const keyHex = key.toString('hex');
  const block32 = randomBytes(32);
  const pair = sm2v2.generateKeyPairHex();
  const sigV2 = sm2v2.doSignature(msg, pair.privateKey, { hash: true, der: true });
  const sigV1 = smCrypto.sm2.doSignature(msg, pair.privateKey, { hash: true, der: true });
  return {
    'sm3 (ops/s, ~200-byte message)': {
      'node:crypto': opsPerSecond(() => createHash('sm3').update(msg).digest()),
      'sm-crypto-v2': opsPerSecond(() => sm3v2(msg)),
      'sm-crypto': opsPerSecond(() => smCrypto.sm3(msg)),
    },
    'sm4-ecb (ops/s, one 32-byte EHCID)': {
      'node:crypto': opsPerSecond(() => {
        const c = createCipheriv('sm4-ecb', key, null);
        c.setAutoPadding(false);
        Buffer.concat([c.update(block32), c.final()]);
      }),
      'sm-crypto-v2': opsPerSecond(() => sm4v2.encrypt(block32, keyHex, { padding: 'none' })),
      'sm-crypto': opsPerSecond(() => smCrypto.sm4.encrypt(block32.toString('hex'), keyHex, { padding: 'none' })),
    },
    'sm2 sign with ZA, DER (ops/s)': {
      'sm-crypto-v2': opsPerSecond(() => sm2v2.doSignature(msg, pair.privateKey, { hash: true, der: true, publicKey: pair.publicKey })),
      'sm-crypto': opsPerSecond(() => smCrypto.sm2.doSignature(msg, pair.privateKey, { hash: true, der: true, publicKey: pair.publicKey })),
    },
    'sm2 verify with ZA, DER (ops/s)': {
      'sm-crypto-v2': opsPerSecond(() => sm2v2.doVerifySignature(msg, sigV2, pair.publicKey, { hash: true, der: true })),
      'sm-crypto': opsPerSecond(() => smCrypto.sm2.doVerifySignature(msg, sigV1, pair.publicKey, { hash: true, der: true })),
    },
    cross_check: {
      'sm-crypto verifies sm-crypto-v2 signature': smCrypto.sm2.doVerifySignature(msg, sigV2, pair.publicKey, { hash: true, der: true }),
      'sm-crypto-v2 verifies sm-crypto signature': sm2v2.doVerifySignature(msg, sigV1, pair.publicKey, { hash: true, der: true }),
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(JSON.stringify(await run(), null, 2));
}
