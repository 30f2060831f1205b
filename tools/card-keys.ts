/**
 * 密钥灌装 — key loading for the crypto card, and a look at what the card and the config say.
 *
 *   node --import tsx tools/card-keys.ts import --keyfile F --role ehcid --index 1 --key HEX32
 *   node --import tsx tools/card-keys.ts import --keyfile F --from-soft soft-card.keys.json [--config C]
 *       writes the SoftCard's ehcid/validity/storage/mac keys and SM2 pair into a softsdf key file at the
 *       indexes the config uses (card.keys), so SoftCard and SdfCard+softsdf give the same answers
 *   node --import tsx tools/card-keys.ts wrap --kek HEX32 --key HEX32
 *       the key wrapped under a KEK (SM4-ECB), for card.sdf.wrappedKeys on cards without keys by index
 *   node --import tsx tools/card-keys.ts show [--config C]
 *       device info of the configured card, the key indexes the config uses, and whether each answers
 *
 * The softsdf key file is the software SDF library's store (firmware-bridge/softsdf): plain text, mode
 * 0600, replaced atomically. A real card is loaded with the vendor's own tool; `show` works on both.
 */
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sm2 } from 'sm-crypto-v2';
import { DEFAULT_KEY_INDEXES, type KeyMap, type KeyRole } from '../src/crypto/card.ts';
import { loadConfig, configPathFrom } from '../src/config/load.ts';
import { SdfCard } from '../src/crypto/sdf-card.ts';
import { createLogger } from '../src/ops/log.ts';

const HEX32 = /^[0-9a-fA-F]{32}$/;
export const SYMMETRIC_ROLES = ['ehcid', 'validity', 'storage', 'mac'] as const;

export type SoftsdfEntry =
  | { kind: 'sym'; index: number; key: string }
  | { kind: 'sm2' | 'sm2enc'; index: number; private: string; public: string }
  | { kind: 'pin'; index: number; password: string };

function lineOf(e: SoftsdfEntry): string {
  if (e.kind === 'sym') return `sym ${e.index} ${e.key.toLowerCase()}`;
  if (e.kind === 'pin') return `pin ${e.index} ${e.password}`;
  return `${e.kind} ${e.index} ${e.private.toLowerCase()} ${e.public.toLowerCase()}`;
}

function validate(e: SoftsdfEntry): void {
  if (!Number.isInteger(e.index) || e.index < 0 || e.index > 255) throw new Error(`key index ${e.index}: softsdf holds indexes 0..255`);
  if (e.kind === 'sym' && !HEX32.test(e.key)) throw new Error(`key at index ${e.index} must be 32 hex digits (a 128-bit SM4 key)`);
  if (e.kind === 'sm2' || e.kind === 'sm2enc') {
    if (!/^[0-9a-fA-F]{64}$/.test(e.private)) throw new Error(`SM2 private key at index ${e.index} must be 64 hex digits`);
    if (!/^04[0-9a-fA-F]{128}$/.test(e.public)) throw new Error(`SM2 public key at index ${e.index} must be 04‖X‖Y (130 hex digits)`);
  }
  if (e.kind === 'pin' && !/^\S{1,63}$/.test(e.password)) throw new Error('a key password is 1..63 characters without spaces');
}

/** Write or replace entries (same kind and index) in a softsdf key file; keeps the others. */
export function importKeys(keyFile: string, entries: SoftsdfEntry[]): void {
  entries.forEach(validate);
  const lines = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : ['# softsdf key file (ehc-edge tools/card-keys.ts): sym|sm2|pin <index> …'];
  const replaced = new Set(entries.map((e) => `${e.kind} ${e.index}`));
  const kept = lines.filter((l) => {
    const [kind, index] = l.trim().split(/\s+/);
    return !replaced.has(`${kind} ${index}`);
  });
  const text = [...kept, ...entries.map(lineOf)].join('\n') + '\n';
  const tmp = `${keyFile}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, keyFile);
  const dfd = openSync(path.dirname(keyFile), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** The entries that load a SoftCard key file's keys at the config's indexes. */
export function entriesFromSoftKeyFile(softKeyFile: string, keys: KeyMap): SoftsdfEntry[] {
  const doc = JSON.parse(readFileSync(softKeyFile, 'utf8')) as Record<KeyRole | 'sm2', unknown>;
  const out: SoftsdfEntry[] = SYMMETRIC_ROLES.map((role) => ({ kind: 'sym', index: keys[role], key: String(doc[role]) }));
  const pair = doc.sm2 as { private: string; public?: string } | undefined;
  if (pair?.private) out.push({ kind: 'sm2', index: keys.sign, private: pair.private, public: pair.public ?? sm2.getPublicKeyFromPrivateKey(pair.private) });
  return out;
}

/**
 * The digital envelope a card system makes for a site: the key SM2-encrypted (GB/T 32918.4, C1C3C2)
 * to the card's encryption public key (04‖X‖Y or X‖Y hex, as `ehc-edge card enc-key` prints it).
 * Hex C1 (x‖y) ‖ C3 ‖ C2, for card.sdf.envelopes. Made with sm-crypto-v2, independent of any card.
 */
export function sealEnvelope(encPublicKeyHex: string, keyHex: string): string {
  const pub = encPublicKeyHex.length === 128 ? `04${encPublicKeyHex}` : encPublicKeyHex;
  if (!/^04[0-9a-fA-F]{128}$/.test(pub)) throw new Error('the encryption public key must be 04‖X‖Y (130 hex digits) or X‖Y (128)');
  if (!HEX32.test(keyHex)) throw new Error('the key must be 32 hex digits (a 128-bit SM4 key)');
  return sm2.doEncrypt(Buffer.from(keyHex, 'hex'), pub, 1).toUpperCase();
}

/** SM4-ECB of a 16-byte key under a KEK: what SDF_ImportKeyWithKEK (SGD_SM4_ECB) unwraps. */
export function wrapKey(kekHex: string, keyHex: string): string {
  if (!HEX32.test(kekHex) || !HEX32.test(keyHex)) throw new Error('kek and key must be 32 hex digits each');
  const c = createCipheriv('sm4-ecb', Buffer.from(kekHex, 'hex'), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.from(keyHex, 'hex')), c.final()]).toString('hex').toUpperCase();
}

/** SM4-CBC wrap as softsdf (and GmSSL-style libraries) unwrap it: IV ‖ SM4-CBC(IV, key ‖ PKCS#7), 48 bytes. */
export function wrapKeyCbc(kekHex: string, keyHex: string, iv: Buffer): string {
  if (!HEX32.test(kekHex) || !HEX32.test(keyHex) || iv.length !== 16) throw new Error('kek and key must be 32 hex digits each, the IV 16 bytes');
  const c = createCipheriv('sm4-cbc', Buffer.from(kekHex, 'hex'), iv);
  return Buffer.concat([iv, c.update(Buffer.from(keyHex, 'hex')), c.final()]).toString('hex').toUpperCase();
}

async function show(configFile: string): Promise<number> {
  const config = loadConfig(configFile);
  const keys = config.card.keys;
  console.log(`config: ${configFile}`);
  console.log(`driver: ${config.card.driver}`);
  console.log('key indexes:', Object.entries(keys).map(([r, i]) => `${r}=${i}${i === DEFAULT_KEY_INDEXES[r as KeyRole] ? '' : ' (remapped)'}`).join(', '));
  if (config.card.driver !== 'sdf' || !config.card.sdf) {
    console.log(`soft card key file: ${config.card.keyFile}`);
    return 0;
  }
  const card = await SdfCard.open(config.card.sdf, keys, createLogger({ level: 'error' }));
  try {
    const h = await card.health();
    console.log(`card: ${h.ok ? 'ready' : 'DOWN'} — ${h.detail}`);
    for (const [k, v] of Object.entries(h.device ?? {})) console.log(`  ${k}: ${v}`);
    if (!h.ok) return 1;
    const wrapped = config.card.sdf.wrappedKeys ?? {};
    for (const role of SYMMETRIC_ROLES) {
      const source = wrapped[role] ? `wrapped under KEK ${config.card.sdf.kek}` : 'internal index';
      const answer = await card.sm4Encrypt(keys[role], Buffer.alloc(16)).then(() => 'present', (e: Error) => `NOT USABLE: ${e.message}`);
      console.log(`  ${role.padEnd(8)} index ${keys[role]} (${source}): ${answer}`);
    }
    const pub = await card.sm2PublicKey(keys.sign).then((p) => p.toString('hex').toUpperCase(), (e: Error) => `NOT USABLE: ${e.message}`);
    console.log(`  sign     index ${keys.sign}: public key ${pub}`);
    return 0;
  } finally {
    await card.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      keyfile: { type: 'string' },
      role: { type: 'string' },
      index: { type: 'string' },
      key: { type: 'string' },
      kek: { type: 'string' },
      'from-soft': { type: 'string' },
      config: { type: 'string' },
      pin: { type: 'string' },
    },
  });
  const cmd = positionals[0];
  const configFile = () => configPathFrom(values.config ? ['--config', values.config] : [], process.env);
  switch (cmd) {
    case 'import': {
      if (!values.keyfile) throw new Error('import needs --keyfile (the softsdf key file, SOFTSDF_KEYFILE)');
      let entries: SoftsdfEntry[];
      let signIndex = values.index !== undefined ? Number(values.index) : DEFAULT_KEY_INDEXES.sign;
      if (values['from-soft']) {
        const keys = values.config || existsSync(configFile()) ? loadConfig(configFile()).card.keys : { ...DEFAULT_KEY_INDEXES };
        entries = entriesFromSoftKeyFile(values['from-soft'], keys);
        signIndex = keys.sign;
      } else {
        const role = values.role;
        if (!role || !(SYMMETRIC_ROLES as readonly string[]).includes(role)) throw new Error(`--role must be one of ${SYMMETRIC_ROLES.join(', ')}`);
        const index = values.index !== undefined ? Number(values.index) : DEFAULT_KEY_INDEXES[role as KeyRole];
        entries = [{ kind: 'sym', index, key: values.key ?? '' }];
      }
      if (values.pin) entries.push({ kind: 'pin', index: signIndex, password: values.pin });
      importKeys(values.keyfile, entries);
      for (const e of entries) console.log(`loaded ${e.kind} at index ${e.index}`);
      return 0;
    }
    case 'wrap':
      console.log(wrapKey(values.kek ?? '', values.key ?? ''));
      return 0;
    case 'show':
      return show(configFile());
    default:
      console.error('usage: card-keys import|wrap|show (see the header of tools/card-keys.ts)');
      return 2;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`card-keys: ${err.message}`);
      process.exit(2);
    },
  );
}
