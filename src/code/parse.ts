/**
 * The 电子健康卡 QR payload (材料一 §5.1.2, §6.2): `EHCID:TAG:VALID:EHCAPPID`, or with the extension
 * field `EHCID:TAG:VALID:EXT:EHCAPPID` (the form of 材料三 附录A's example). Anything else is 2002.
 *   TAG 0 dynamic: VALID required (empty → 2003, not a ciphertext → 2004)
 *   TAG 1 static:  VALID empty
 * Hex is accepted in any case and normalised to upper case. The EHCAPPID's first 9 characters are
 * the issuing card system's EHCIN (附录D), used for routing; an EHCAPPID in an older numbering (as in
 * the 附录A example, `35020001001`) is accepted with `ehcin: null` and routed to the home system.
 * The parser throws nothing but EhcError.
 */
import { EhcError } from '../errors.ts';
import { parseComponentNumber, parseEhcin } from './identifiers.ts';

export interface HealthCode {
  /** the payload as read, trimmed of surrounding white space */
  raw: string;
  ehcid: string;
  tag: '0' | '1';
  codeType: 'dynamic' | 'static';
  valid: string;
  ext: string;
  ehcappid: string;
  /** issuing card system; null when the EHCAPPID is not in 附录D numbering */
  ehcin: string | null;
}

export const MAX_CODE_LENGTH = 512;
const EHCID_HEX = /^(?:[0-9A-Fa-f]{32}){1,4}$/;
const VALID_HEX = /^(?:[0-9A-Fa-f]{32}){1,2}$/;
const EHCAPPID = /^[0-9A-Za-z]{9,32}$/;
const EXT = /^[\x20-\x39\x3B-\x7E]{0,64}$/; // printable ASCII without ':'

function illegal(why: string): never {
  throw new EhcError('2002', `health code illegal: ${why}`);
}

export function parseHealthCode(input: unknown): HealthCode {
  if (typeof input !== 'string') illegal('not text');
  const raw = input.trim();
  if (raw.length === 0) illegal('empty');
  if (raw.length > MAX_CODE_LENGTH) illegal(`longer than ${MAX_CODE_LENGTH} characters`);
  const fields = raw.split(':');
  if (fields.length !== 4 && fields.length !== 5) illegal(`expected 4 or 5 fields separated by ':', got ${fields.length}`);
  const [ehcid, tag, valid] = fields as [string, string, string];
  const ext = fields.length === 5 ? fields[3]! : '';
  const ehcappid = fields[fields.length - 1]!;
  if (!EHCID_HEX.test(ehcid)) illegal('EHCID must be hex in whole 16-byte blocks (64 hex digits usually)');
  if (tag !== '0' && tag !== '1') illegal(`TAG must be 0 (dynamic) or 1 (static), got ${JSON.stringify(tag.slice(0, 8))}`);
  if (!EXT.test(ext)) illegal('EXT must be printable ASCII, at most 64 characters');
  if (!EHCAPPID.test(ehcappid)) illegal('EHCAPPID must be 9–32 letters or digits');
  let ehcin: string | null = null;
  if (ehcappid.length === 17) {
    const component = parseComponentNumber(ehcappid.toUpperCase());
    if (!component) illegal('EHCAPPID is not a 附录D component number (EHCIN + category + class + serial)');
    ehcin = component.ehcin;
  } else if (parseEhcin(ehcappid.slice(0, 9).toUpperCase())) {
    ehcin = ehcappid.slice(0, 9).toUpperCase();
  }
  if (tag === '0') {
    if (valid === '') throw new EhcError('2003', 'validity empty: a dynamic code (TAG 0) must carry VALID');
    if (!VALID_HEX.test(valid)) throw new EhcError('2004', 'validity illegal: VALID must be 32 hex digits');
  } else if (valid !== '') {
    illegal('a static code (TAG 1) must have an empty VALID');
  }
  return {
    raw,
    ehcid: ehcid.toUpperCase(),
    tag,
    codeType: tag === '0' ? 'dynamic' : 'static',
    valid: valid.toUpperCase(),
    ext,
    ehcappid: ehcappid.toUpperCase(),
    ehcin,
  };
}

/** Cheap shape test for scanners: does this text look like a health code at all? */
export function looksLikeHealthCode(text: string): boolean {
  return /^[0-9A-Fa-f]{32,128}:[01]:/.test(text.trim());
}
