/**
 * SoftCard: the embedded software crypto card (the default on a desk demo and in tests).
 * SM3/SM4/HMAC-SM3 use node:crypto (OpenSSL, native, ~µs per op); SM2 uses sm-crypto-v2, because
 * node:crypto's "SM2" key signs plain ECDSA over the SM2 curve without the ZA/user-ID step
 * (see README, crypto section, for the measurements).
 *
 * Keys live in a JSON key file (mode 0600, refused when group/world can read it), created with
 * fresh random keys on first start. Roles map to key indexes through the config's KeyMap, the same
 * indexes an SDF card would use, so callers address keys by index only.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, type Cipher, type Decipher } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { sm2 } from 'sm-crypto-v2';
import { EhcError } from '../errors.ts';
import { pooledRandomBytes } from '../platform/random-pool.ts';
import type { CardHealth, CardPrimitives, KeyIndex, KeyMap, Sm4Mode } from './card.ts';
import { MAC_KEY_LABEL } from './mac-key.ts';
import { createFileDurablySync, makeDirDurablySync } from '../platform/durable-write.ts';

export interface SoftKeyFile {
  version: 1;
  ehcid: string;
  validity: string;
  storage: string;
  mac: string;
  sm2: { private: string; public: string };
}

const SYMMETRIC_ROLES = ['ehcid', 'validity', 'storage', 'mac'] as const;
const HEX32 = /^[0-9a-fA-F]{32}$/;
export const SM2_DEFAULT_USER_ID = '1234567812345678';

export function generateSoftKeys(): SoftKeyFile {
  const pair = sm2.generateKeyPairHex();
  return {
    version: 1,
    ehcid: randomBytes(16).toString('hex'),
    validity: randomBytes(16).toString('hex'),
    storage: randomBytes(16).toString('hex'),
    mac: randomBytes(16).toString('hex'),
    sm2: { private: pair.privateKey, public: pair.publicKey },
  };
}

/** Write a key file durably with mode 0600; never overwrites. */
export function writeKeyFile(file: string, keys: SoftKeyFile): void {
  makeDirDurablySync(path.dirname(file));
  createFileDurablySync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
}

function readKeyFile(file: string): SoftKeyFile {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new EhcError('8008', `key file ${file} is readable by group or others (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  }
  let doc: SoftKeyFile;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as SoftKeyFile;
  } catch (err) {
    throw new EhcError('8008', `key file ${file} is not valid JSON`, { cause: err });
  }
  for (const role of SYMMETRIC_ROLES) {
    if (typeof doc[role] !== 'string' || !HEX32.test(doc[role])) throw new EhcError('8008', `key file ${file}: "${role}" must be 32 hex digits (a 128-bit SM4 key)`);
  }
  if (!doc.sm2 || !/^[0-9a-fA-F]{64}$/.test(doc.sm2.private ?? '')) throw new EhcError('8008', `key file ${file}: "sm2.private" must be 64 hex digits`);
  return doc;
}

export class SoftCard implements CardPrimitives {
  readonly driver = 'soft';
  private closed = false;

  private constructor(
    private readonly file: string,
    private readonly symmetric: Map<KeyIndex, Buffer>,
    private readonly sm2Keys: Map<KeyIndex, { private: string; public: string }>,
  ) {}

  /** Open the key file, creating it with fresh random keys when it does not exist yet. */
  static async open(keyFile: string, keys: KeyMap): Promise<SoftCard> {
    let exists = true;
    try {
      statSync(keyFile);
    } catch {
      exists = false;
    }
    if (!exists) writeKeyFile(keyFile, generateSoftKeys());
    const doc = readKeyFile(keyFile);
    const symmetric = new Map<KeyIndex, Buffer>();
    for (const role of SYMMETRIC_ROLES) {
      const index = keys[role];
      if (symmetric.has(index)) throw new EhcError('8008', `card.keys: index ${index} is used for two symmetric keys`);
      symmetric.set(index, Buffer.from(doc[role], 'hex'));
    }
    const priv = doc.sm2.private.toLowerCase();
    const pub = sm2.getPublicKeyFromPrivateKey(priv);
    return new SoftCard(keyFile, symmetric, new Map([[keys.sign, { private: priv, public: pub }]]));
  }

  private key(index: KeyIndex): Buffer {
    if (this.closed) throw new EhcError('8008', 'software card is closed');
    const k = this.symmetric.get(index);
    if (!k) throw new EhcError('8008', `software card has no symmetric key at index ${index}`);
    return k;
  }

  private sm2Key(index: KeyIndex) {
    if (this.closed) throw new EhcError('8008', 'software card is closed');
    const k = this.sm2Keys.get(index);
    if (!k) throw new EhcError('8008', `software card has no SM2 key at index ${index}`);
    return k;
  }

  /**
   * One long-lived SM4-ECB context per key and direction. ECB has no chaining state and padding is
   * off, so `update` on whole blocks returns exactly those blocks and leaves the context as it was:
   * the same context serves every call (creating one per call was a third of a verification's crypto
   * time). Inputs that are not whole blocks are refused before they reach it.
   */
  private readonly ecbContexts = new Map<string, Cipher | Decipher>();
  /** HMAC keys derived from the MAC keys (deterministic, see mac-key.ts), per key index */
  private readonly derivedMacKeys = new Map<KeyIndex, Buffer>();

  private ecb(op: 'enc' | 'dec', index: KeyIndex): Cipher | Decipher {
    const key = this.key(index); // refuses after close and for unknown indexes, cached or not
    const id = `${op}:${index}`;
    let c = this.ecbContexts.get(id);
    if (!c) {
      c = op === 'enc' ? createCipheriv('sm4-ecb', key, null) : createDecipheriv('sm4-ecb', key, null);
      c.setAutoPadding(false);
      this.ecbContexts.set(id, c);
    }
    return c;
  }

  private sm4(op: 'enc' | 'dec', index: KeyIndex, data: Uint8Array, mode: Sm4Mode, iv?: Uint8Array): Buffer {
    if (data.length % 16 !== 0) throw new EhcError('8008', `SM4 works on whole 16-byte blocks (got ${data.length} bytes)`);
    if (mode === 'cbc' && (!iv || iv.length !== 16)) throw new EhcError('8008', 'SM4-CBC needs a 16-byte IV');
    if (mode === 'ecb') return this.ecb(op, index).update(data);
    const c = op === 'enc' ? createCipheriv('sm4-cbc', this.key(index), iv!) : createDecipheriv('sm4-cbc', this.key(index), iv!);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(data), c.final()]);
  }

  async sm4Encrypt(key: KeyIndex, data: Uint8Array, mode: Sm4Mode = 'ecb', iv?: Uint8Array) {
    return this.sm4('enc', key, data, mode, iv);
  }
  async sm4Decrypt(key: KeyIndex, data: Uint8Array, mode: Sm4Mode = 'ecb', iv?: Uint8Array) {
    return this.sm4('dec', key, data, mode, iv);
  }
  async sm3(data: Uint8Array) {
    return createHash('sm3').update(data).digest();
  }
  /** HMAC-SM3 under the key derived from the mac key, as every card does (see mac-key.ts). */
  async hmacSm3(key: KeyIndex, data: Uint8Array) {
    this.key(key); // refuses after close and for unknown indexes, cached or not
    let derived = this.derivedMacKeys.get(key);
    if (!derived) {
      derived = this.sm4('enc', key, MAC_KEY_LABEL, 'ecb');
      this.derivedMacKeys.set(key, derived);
    }
    return createHmac('sm3', derived).update(data).digest();
  }
  async random(length: number) {
    return pooledRandomBytes(length);
  }
  async sm2Sign(key: KeyIndex, message: Uint8Array) {
    const k = this.sm2Key(key);
    const der = sm2.doSignature(message, k.private, { hash: true, der: true, publicKey: k.public, userId: SM2_DEFAULT_USER_ID });
    return Buffer.from(der, 'hex');
  }
  async sm2Verify(key: KeyIndex, message: Uint8Array, derSignature: Uint8Array) {
    const k = this.sm2Key(key);
    return sm2.doVerifySignature(message, Buffer.from(derSignature).toString('hex'), k.public, { hash: true, der: true, userId: SM2_DEFAULT_USER_ID });
  }
  async sm2PublicKey(key: KeyIndex) {
    return Buffer.from(this.sm2Key(key).public, 'hex');
  }
  async health(): Promise<CardHealth> {
    return this.closed
      ? { ok: false, driver: this.driver, detail: 'closed' }
      : { ok: true, driver: this.driver, detail: 'ready', device: { keyFile: this.file } };
  }
  async close() {
    this.closed = true;
    this.ecbContexts.clear();
    this.derivedMacKeys.clear();
  }
}
