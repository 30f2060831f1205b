/**
 * Dialects of the card-system protocol: how a site's card system deviates from the national V3.1
 * reading (材料三 附录A §3.4, ehc-protocol.md §3.3). One knob per difference; the national reading is
 * the default for every knob, so `{}` in config means "speak the standard".
 *
 *   digestOver    ciphertext | plaintext   biz_content in the digest string: as sent, or the plain JSON
 *   encoding      hex | base64             how the ciphertext travels (hex is upper case)
 *   charset       utf-8 | gbk              bytes of the JSON text and of the digest string
 *   padding       pkcs7 | zero             SM4 block padding (zero: 0x00 up to the block; none when aligned)
 *   key           hex-prefix | ascii16     national: first 16 chars of upper-hex(secret bytes) as ASCII;
 *                                          ascii16: the secret's own first 16 ASCII bytes
 *   secretSuffix  app_secret | bare        `…&app_secret=<secret>` or `…<secret>` appended directly
 *
 * The plaintext itself is always the national "upper-hex text of the JSON bytes" (the seed's step 4).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import iconv from 'iconv-lite';
import type { DialectConfig } from '../config/types.ts';
import { EhcError } from '../errors.ts';
import { pkcs7Pad, pkcs7Unpad } from '../platform/pkcs7.ts';

export type Dialect = Required<DialectConfig>;

export const NATIONAL_V31: Readonly<Dialect> = Object.freeze({
  name: 'national-v3.1',
  digestOver: 'ciphertext',
  encoding: 'hex',
  charset: 'utf-8',
  padding: 'pkcs7',
  key: 'hex-prefix',
  secretSuffix: 'app_secret',
});

/** Fill the knobs a config leaves out with the national reading. */
export function resolveDialect(config: DialectConfig = {}): Dialect {
  const d: Dialect = { ...NATIONAL_V31 };
  for (const [k, v] of Object.entries(config) as [keyof Dialect, string | undefined][]) {
    if (v !== undefined) (d as Record<string, string>)[k] = v;
  }
  if (!config.name) {
    const changed = (Object.keys(NATIONAL_V31) as (keyof Dialect)[]).filter((k) => k !== 'name' && d[k] !== NATIONAL_V31[k]);
    if (changed.length) d.name = `national-v3.1+${changed.map((k) => `${k}=${d[k]}`).join(',')}`;
  }
  return d;
}

const BLOCK = 16;

export function encodeText(text: string, dialect: Dialect): Buffer {
  return dialect.charset === 'gbk' ? iconv.encode(text, 'gbk') : Buffer.from(text, 'utf8');
}

export function decodeText(bytes: Buffer, dialect: Dialect): string {
  return dialect.charset === 'gbk' ? iconv.decode(bytes, 'gbk') : bytes.toString('utf8');
}

/** The 16-byte SM4 message key derived from the app secret. */
export function messageKey(secret: string, dialect: Dialect): Buffer {
  const text = dialect.key === 'ascii16' ? secret : Buffer.from(secret, 'utf8').toString('hex').toUpperCase();
  if (text.length < BLOCK) throw new EhcError('9006', 'app secret too short for a 16-byte SM4 key');
  return Buffer.from(text.slice(0, BLOCK), 'latin1');
}

function pad(data: Buffer, dialect: Dialect): Buffer {
  if (dialect.padding === 'pkcs7') return pkcs7Pad(data);
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

function unpad(data: Buffer, dialect: Dialect): Buffer | null {
  if (dialect.padding === 'pkcs7') return pkcs7Unpad(data);
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end);
}

const UPPER_HEX_TEXT = /^(?:[0-9A-Fa-f]{2})*$/;

/** biz JSON text → biz_content as sent (national: upper-hex SM4-ECB of the upper-hex text of the JSON bytes). */
export function encryptBiz(json: string, secret: string, dialect: Dialect): string {
  const hexText = Buffer.from(encodeText(json, dialect).toString('hex').toUpperCase(), 'ascii');
  const cipher = createCipheriv('sm4-ecb', messageKey(secret, dialect), null);
  cipher.setAutoPadding(false);
  const ct = Buffer.concat([cipher.update(pad(hexText, dialect)), cipher.final()]);
  return dialect.encoding === 'base64' ? ct.toString('base64') : ct.toString('hex').toUpperCase();
}

/** biz_content as received → biz JSON text. Throws EhcError 9007 when it does not decrypt. */
export function decryptBiz(content: string, secret: string, dialect: Dialect): string {
  const wellFormed = dialect.encoding === 'base64' ? /^[A-Za-z0-9+/]+={0,2}$/.test(content) : /^(?:[0-9A-Fa-f]{32})+$/.test(content);
  const ct = wellFormed ? Buffer.from(content, dialect.encoding) : Buffer.alloc(0);
  if (ct.length === 0 || ct.length % BLOCK !== 0) throw new EhcError('9007', `biz_content is not ${dialect.encoding} SM4 ciphertext in whole blocks`);
  const decipher = createDecipheriv('sm4-ecb', messageKey(secret, dialect), null);
  decipher.setAutoPadding(false);
  const plain = unpad(Buffer.concat([decipher.update(ct), decipher.final()]), dialect);
  const hexText = plain?.toString('latin1');
  if (hexText === undefined || !UPPER_HEX_TEXT.test(hexText)) throw new EhcError('9007', 'biz_content does not decrypt under this app secret and dialect');
  return decodeText(Buffer.from(hexText, 'hex'), dialect);
}

/** A public field's text for the digest; objects and empty values do not take part. */
function digestValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** The string the digest is taken over (exported for diagnostics and tests). */
export function digestInput(fields: object, secret: string, dialect: Dialect): string {
  const f = fields as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(f).filter((key) => key !== 'digest').sort()) {
    const v = digestValue(f[k]);
    if (v !== undefined) parts.push(`${k}=${v}`);
  }
  const joined = parts.join('&');
  return dialect.secretSuffix === 'bare' ? joined + secret : `${joined}&app_secret=${secret}`;
}

/** Upper-hex SM3 of the digest string. `fields` must already carry biz_content as the dialect digests it. */
export function digestOf(fields: object, secret: string, dialect: Dialect): string {
  return createHash('sm3').update(encodeText(digestInput(fields, secret, dialect), dialect)).digest('hex').toUpperCase();
}
