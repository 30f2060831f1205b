/**
 * Display masking of personal data, 附录B: a name shows with its 2nd character as `*`;
 * an ID number shows only its first 4 and last 4 characters. Phone numbers keep the first 3 and
 * last 4. Everything that logs, audits or shows data uses these.
 */
import { createHash } from 'node:crypto';
export function maskName(name: string): string {
  const chars = Array.from(name);
  if (chars.length === 0) return '';
  if (chars.length === 1) return '*';
  chars[1] = '*';
  return chars.join('');
}

export function maskIdNo(idNo: string): string {
  const chars = Array.from(idNo);
  if (chars.length <= 8) return '*'.repeat(chars.length);
  return chars.slice(0, 4).join('') + '*'.repeat(chars.length - 8) + chars.slice(-4).join('');
}

export function maskPhone(phone: string): string {
  const chars = Array.from(phone);
  if (chars.length <= 7) return '*'.repeat(chars.length);
  return chars.slice(0, 3).join('') + '*'.repeat(chars.length - 7) + chars.slice(-4).join('');
}

/** The shape of a health code (hex EHCID ciphertext, then `:0:`/`:1:`) or of a bare hex EHCID. */
const CODE_SHAPE = /^(?:[0-9A-Fa-f]{32,128}:[01]:|[0-9A-Fa-f]{32,128}$)/;

/**
 * A health code or EHCID is not PII by itself but links to a person: keep its head only (hex of the
 * EHCID's ciphertext). Anything else — a garbage scan, an ID card's barcode, a rejected request's
 * text — may be personal data in clear: only an SM3 digest of it (`sm3:<16 hex>(length)`), which still
 * lets an operator see that two records are the same input.
 */
export function maskCode(code: string): string {
  if (!CODE_SHAPE.test(code)) return digestText(code);
  return code.length <= 12 ? code : `${code.slice(0, 8)}…(${code.length})`;
}

/** `sm3:<first 16 hex of the SM3 digest>(length)`: a non-reversible tag of a text. */
export function digestText(text: string): string {
  return `sm3:${createHash('sm3').update(text, 'utf8').digest('hex').slice(0, 16)}(${Array.from(text).length})`;
}

const MASKERS: Record<string, (v: string) => string> = {
  id_no: maskIdNo,
  idNo: maskIdNo,
  id0000: maskIdNo,
  user_name: maskName,
  userName: maskName,
  name: maskName,
  operator_name: maskName,
  operatorName: maskName,
  mobile_phone: maskPhone,
  telephone: maskPhone,
  unit_phone: maskPhone,
  phone: maskPhone,
  ehealth_code: maskCode,
  ehealthCode: maskCode,
  address: () => '***',
  email: () => '***',
};

/** Field names that carry personal data; the logger and audit mask them by construction. */
export const PII_FIELDS: ReadonlySet<string> = new Set(Object.keys(MASKERS));

/** 18-character resident ID numbers and 11-digit mobile numbers inside free text. */
const ID_IN_TEXT = /(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])/g;
const PHONE_IN_TEXT = /(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)/g;

export function maskText(text: string): string {
  return text
    .replace(ID_IN_TEXT, (m) => maskIdNo(m))
    .replace(PHONE_IN_TEXT, (_m, a: string, _b: string, c: string) => `${a}****${c}`);
}

/**
 * The appliance's own serial numbers (`out_verify_no`, src/protocol/ids.ts: 17 digits of CST time, then
 * 15 hex digits of randomness) hold no personal data and are what ties an audit record and a log line
 * to the usage record upstream: the free-text rules must not rewrite them. The phone rule did, for the
 * 1 in ~2 700 whose random part holds 11 digits starting 1[3-9] between hex letters (…486e19521953088
 * became …486e195****3088), so that verification's audit record named a serial that does not exist.
 * Only a value of exactly that shape is kept; anything else under these names is masked as text.
 */
const SERIAL_SHAPE = /^\d{17}[0-9a-f]{15}$/;
const SERIAL_KEYS: ReadonlySet<string> = new Set(['out_verify_no', 'outVerifyNo']);

/** An appliance serial under its own field name: kept as it is (see SERIAL_SHAPE). */
export function isSerialField(key: string, value: string): boolean {
  return SERIAL_KEYS.has(key) && SERIAL_SHAPE.test(value);
}

/** Deep copy of a value with every PII field masked and free text scrubbed. */
export function maskDeep(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return maskText(value);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1));
  if (value instanceof Error) return { error: value.name, message: maskText(value.message) };
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const masker = MASKERS[k];
      if (typeof v === 'string' && isSerialField(k, v)) out[k] = v;
      else out[k] = masker && typeof v === 'string' ? masker(v) : maskDeep(v, depth + 1);
    }
    return out;
  }
  return value;
}
