/**
 * Dialects of the card-system protocol: how a site's card system deviates from the national V3.1
 * reading (材料三 附录A §3.4, ehc-protocol.md §3.3). A dialect is data — `dialects/<name>.json`,
 * validated by `dialects/dialect.schema.json` (loader: dialect-profiles.ts) — and every knob defaults
 * to the national reading, so `{}` means "speak the standard".
 *
 * This module holds the byte-level knobs: key derivation, plaintext form, padding, encoding, charset
 * and the digest recipe. The envelope (envelope.ts) applies the answer mapping, field-name maps and
 * timestamp/version forms; transport.ts the body form and per-method paths.
 *
 * Only SM4 and SM3: 密评 requires SM2/SM3/SM4, so AES, MD5, SHA-256 … are refused, never offered.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import iconv from 'iconv-lite';
import { EhcError } from '../errors.ts';
import { pkcs7Pad, pkcs7Unpad } from '../platform/pkcs7.ts';

export interface Dialect {
  name: string;
  description?: string;
  /** the description in Chinese (what `ehc-edge dialect show` prints by default) */
  descriptionZh?: string;
  encType: 'SM4';
  digestType: 'SM3';
  key: 'hex-prefix' | 'ascii16' | 'hex-decoded' | 'fixed';
  plaintext: 'hex-text' | 'raw';
  padding: 'pkcs7' | 'zero';
  encoding: 'hex' | 'base64';
  charset: 'utf-8' | 'gbk';
  digestRecipe: 'sorted-pairs' | 'json-text';
  digestOver: 'ciphertext' | 'plaintext';
  emptyFields: 'skip' | 'keep' | 'keep-null';
  secretSuffix: 'app_secret' | 'bare';
  digestCase: 'upper' | 'lower';
  codeField: string;
  messageField: string;
  success: string[];
  wrapper: string | null;
  signedAnswers: boolean;
  body: 'json' | 'form';
  paths: Record<string, string>;
  fields: Record<string, Record<string, string>>;
  extraFields: Record<string, Record<string, string>>;
  timestamp: 'ms' | 'yyyyMMddHHmmss';
  version: string | null;
  /** key: fixed — the 16-byte key issued with the app (upstream.appKey, 32 hex digits); never in a dialect file */
  appKey?: string;
}

/** What a dialect file or an inline `upstream.dialect` object holds: any knob, plus `base`. */
export type DialectSpec = Partial<Omit<Dialect, 'appKey'>> & { base?: string; $schema?: string };

export const NATIONAL_V31: Readonly<Dialect> = Object.freeze({
  name: 'national-v3.1',
  encType: 'SM4',
  digestType: 'SM3',
  key: 'hex-prefix',
  plaintext: 'hex-text',
  padding: 'pkcs7',
  encoding: 'hex',
  charset: 'utf-8',
  digestRecipe: 'sorted-pairs',
  digestOver: 'ciphertext',
  emptyFields: 'skip',
  secretSuffix: 'app_secret',
  digestCase: 'upper',
  codeField: 'ret_code',
  messageField: 'ret_msg',
  success: ['0000'],
  wrapper: null,
  signedAnswers: true,
  body: 'json',
  paths: {},
  fields: {},
  extraFields: {},
  timestamp: 'ms',
  version: null,
}) as Readonly<Dialect>;

/** The knobs that change bytes or wire shape (everything but name, description, descriptionZh, appKey). */
export const KNOBS = Object.keys(NATIONAL_V31).filter((k) => k !== 'name') as (keyof Dialect)[];

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Knobs where `d` differs from `from` (national by default). */
export function differingKnobs(d: Dialect, from: Readonly<Dialect> = NATIONAL_V31): (keyof Dialect)[] {
  return KNOBS.filter((k) => !same(d[k], from[k]));
}

/**
 * Fill the knobs a spec leaves out from `base` (the national reading unless given). An unnamed spec
 * is named after its base and the knobs it changes (`national-v3.1+encoding=base64`).
 */
export function resolveDialect(spec: DialectSpec = {}, base: Readonly<Dialect> = NATIONAL_V31, extra: { appKey?: string } = {}): Dialect {
  const d: Dialect = structuredClone({ ...base }) as Dialect;
  for (const [k, v] of Object.entries(spec)) {
    if (v === undefined || k === 'base' || k === '$schema') continue;
    (d as unknown as Record<string, unknown>)[k] = structuredClone(v);
  }
  if (!spec.name) {
    const changed = KNOBS.filter((k) => k !== 'description' && k !== 'descriptionZh' && spec[k as keyof DialectSpec] !== undefined && !same(d[k], base[k]));
    d.name = changed.length ? `${base.name}+${changed.map((k) => `${k}=${typeof d[k] === 'object' ? JSON.stringify(d[k]) : String(d[k])}`).join(',')}` : base.name;
  }
  if (extra.appKey !== undefined) d.appKey = extra.appKey;
  return d;
}

const BLOCK = 16;

export function encodeText(text: string, dialect: Pick<Dialect, 'charset'>): Buffer {
  return dialect.charset === 'gbk' ? iconv.encode(text, 'gbk') : Buffer.from(text, 'utf8');
}

export function decodeText(bytes: Buffer, dialect: Pick<Dialect, 'charset'>): string {
  return dialect.charset === 'gbk' ? iconv.decode(bytes, 'gbk') : bytes.toString('utf8');
}

const HEX32 = /^[0-9A-Fa-f]{32}/;

/** The 16-byte SM4 message key. 9006 when the secret (or the fixed key) cannot give one. */
export function messageKey(secret: string, dialect: Pick<Dialect, 'key' | 'appKey' | 'name'>): Buffer {
  switch (dialect.key) {
    case 'fixed': {
      if (!dialect.appKey || !/^[0-9A-Fa-f]{32}$/.test(dialect.appKey)) throw new EhcError('9006', `dialect ${dialect.name} uses a fixed app key: set upstream.appKey (32 hex digits)`);
      return Buffer.from(dialect.appKey, 'hex');
    }
    case 'hex-decoded': {
      if (!HEX32.test(secret)) throw new EhcError('9006', 'app secret does not start with 32 hex digits (key: hex-decoded)');
      return Buffer.from(secret.slice(0, 32), 'hex');
    }
    case 'ascii16':
    case 'hex-prefix': {
      const text = dialect.key === 'ascii16' ? secret : Buffer.from(secret, 'utf8').toString('hex').toUpperCase();
      if (text.length < BLOCK) throw new EhcError('9006', 'app secret too short for a 16-byte SM4 key');
      return Buffer.from(text.slice(0, BLOCK), 'latin1');
    }
  }
}

function pad(data: Buffer, dialect: Pick<Dialect, 'padding'>): Buffer {
  if (dialect.padding === 'pkcs7') return pkcs7Pad(data);
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

function unpad(data: Buffer, dialect: Pick<Dialect, 'padding'>): Buffer | null {
  if (dialect.padding === 'pkcs7') return pkcs7Unpad(data);
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end);
}

const HEX_TEXT = /^(?:[0-9A-Fa-f]{2})*$/;

type CryptoKnobs = Pick<Dialect, 'key' | 'appKey' | 'name' | 'plaintext' | 'padding' | 'encoding' | 'charset'>;

/** biz JSON text → biz_content as sent (national: upper-hex SM4-ECB of the upper-hex text of the JSON bytes). */
export function encryptBiz(json: string, secret: string, dialect: CryptoKnobs): string {
  const bytes = encodeText(json, dialect);
  const plain = dialect.plaintext === 'raw' ? bytes : Buffer.from(bytes.toString('hex').toUpperCase(), 'ascii');
  const cipher = createCipheriv('sm4-ecb', messageKey(secret, dialect), null);
  cipher.setAutoPadding(false);
  const ct = Buffer.concat([cipher.update(pad(plain, dialect)), cipher.final()]);
  return dialect.encoding === 'base64' ? ct.toString('base64') : ct.toString('hex').toUpperCase();
}

/** biz_content as received → biz JSON text. Throws EhcError 9007 when it does not decrypt. */
export function decryptBiz(content: string, secret: string, dialect: CryptoKnobs): string {
  const wellFormed = dialect.encoding === 'base64' ? /^[A-Za-z0-9+/]+={0,2}$/.test(content) : /^(?:[0-9A-Fa-f]{32})+$/.test(content);
  const ct = wellFormed ? Buffer.from(content, dialect.encoding) : Buffer.alloc(0);
  if (ct.length === 0 || ct.length % BLOCK !== 0) throw new EhcError('9007', `biz_content is not ${dialect.encoding} SM4 ciphertext in whole blocks`);
  const decipher = createDecipheriv('sm4-ecb', messageKey(secret, dialect), null);
  decipher.setAutoPadding(false);
  const plain = unpad(Buffer.concat([decipher.update(ct), decipher.final()]), dialect);
  const fail = () => new EhcError('9007', 'biz_content does not decrypt under this app secret and dialect');
  if (!plain) throw fail();
  if (dialect.plaintext === 'hex-text') {
    const hexText = plain.toString('latin1');
    if (!HEX_TEXT.test(hexText)) throw fail();
    return decodeText(Buffer.from(hexText, 'hex'), dialect);
  }
  // raw: the bytes must read as a JSON text (a wrong key gives noise)
  const text = decodeText(plain, dialect);
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') throw fail();
  try {
    JSON.parse(text);
  } catch {
    throw fail();
  }
  return text;
}

type DigestKnobs = Pick<Dialect, 'digestRecipe' | 'emptyFields' | 'secretSuffix' | 'charset' | 'digestCase'>;

/** A public field's text for the digest, or undefined when it does not take part. */
function digestValue(v: unknown, rule: Dialect['emptyFields']): string | undefined {
  if (typeof v === 'string') return v === '' && rule === 'skip' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null && rule === 'keep-null') return 'null';
  return undefined;
}

/** The string the digest is taken over (exported for diagnostics and tests). */
export function digestInput(fields: object, secret: string, dialect: DigestKnobs): string {
  const f = fields as Record<string, unknown>;
  const keys = Object.keys(f).filter((key) => key !== 'digest').sort();
  let joined: string;
  if (dialect.digestRecipe === 'json-text') {
    const obj: Record<string, unknown> = {};
    for (const k of keys) {
      const v = f[k];
      if (v === undefined || (typeof v === 'object' && v !== null)) continue;
      if (v === null ? dialect.emptyFields !== 'keep-null' : v === '' && dialect.emptyFields === 'skip') continue;
      obj[k] = v;
    }
    joined = JSON.stringify(obj);
  } else {
    const parts: string[] = [];
    for (const k of keys) {
      const v = digestValue(f[k], dialect.emptyFields);
      if (v !== undefined) parts.push(`${k}=${v}`);
    }
    joined = parts.join('&');
  }
  return dialect.secretSuffix === 'bare' ? joined + secret : `${joined}&app_secret=${secret}`;
}

/** SM3 of the digest string in the dialect's hex case. `fields` must already carry biz_content as the dialect digests it. */
export function digestOf(fields: object, secret: string, dialect: DigestKnobs): string {
  const hex = createHash('sm3').update(encodeText(digestInput(fields, secret, dialect), dialect)).digest('hex');
  return dialect.digestCase === 'lower' ? hex : hex.toUpperCase();
}
