/**
 * The code profile: how an identity and an expiry time become the EHCID and VALID fields of a code.
 *
 * The crypto-module specification that fixes this is not among the standards we have (材料一 §6.2.2
 * only says EHCID is SM4 of 证件类型 + 证件号码 and VALID is SM4 of the expiry time as 7 BCD bytes), so
 * this is a replaceable module: the DEFAULT profile below is
 *   EHCID = upper-hex SM4-ECB/PKCS#7 of the ASCII text `idType + idNo` under the EHCID key
 *   VALID = upper-hex SM4-ECB/PKCS#7 of the 7 BCD bytes of `yyyyMMddHHmmss` under the validity key.
 * Times in VALID are China Standard Time (UTC+8, no DST), as the codes are issued in China.
 * A site whose card system differs swaps this object, not the verifier.
 */
import { EhcError } from '../errors.ts';
import type { Identity } from './card.ts';
import { formatCst, parseCst } from '../platform/time.ts';

export interface CodeProfile {
  readonly name: string;
  identityPlaintext(identity: Identity): Buffer;
  identityFromPlaintext(plain: Buffer): Identity;
  expiryPlaintext(expiresAt: Date): Buffer;
  expiryFromPlaintext(plain: Buffer): Date;
}

const ID_TYPE = /^[0-9]{2}$/;
const ID_NO = /^[0-9A-Za-z]{1,30}$/;

export const defaultProfile: CodeProfile = {
  name: 'default-v3.1',
  identityPlaintext({ idType, idNo }) {
    if (!ID_TYPE.test(idType)) throw new EhcError('9001', 'id type must be two digits (证件类型)');
    if (!ID_NO.test(idNo)) throw new EhcError('9001', 'id number must be 1–30 letters or digits');
    return Buffer.from(idType + idNo, 'ascii');
  },
  identityFromPlaintext(plain) {
    const text = plain.toString('latin1');
    const idType = text.slice(0, 2);
    const idNo = text.slice(2);
    if (!ID_TYPE.test(idType) || !ID_NO.test(idNo)) throw new EhcError('2002', 'EHCID does not decrypt to an identity (wrong issuer key or tampered code)');
    return { idType, idNo };
  },
  expiryPlaintext(expiresAt) {
    return Buffer.from(formatCst(expiresAt), 'hex'); // 14 decimal digits → 7 BCD bytes
  },
  expiryFromPlaintext(plain) {
    if (plain.length !== 7) throw new EhcError('2004', 'VALID does not decrypt to 7 BCD bytes');
    const digits = plain.toString('hex');
    const at = /^\d{14}$/.test(digits) ? parseCst(digits) : null;
    if (!at) throw new EhcError('2004', 'VALID does not decrypt to a time (wrong key or tampered code)');
    return at;
  },
};
