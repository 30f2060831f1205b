/**
 * A code's EHCID and VALID fields around their SM4-ECB, the cipher itself left to the caller: the blocks
 * to encrypt for an identity or an expiry (the code profile's plaintext, PKCS#7-padded), the blocks a
 * field's hex gives to decrypt, the value in what comes out — each refused with the field's stable code
 * (EHCID 2002; VALID 2003 empty, 2004). Synchronous, so the card (ProfiledCard: SM4 by key index on any
 * card, async) and the simulator's card system (demo/simulator: node:crypto SM4 with its own keys) build
 * and read codes with one piece of code.
 */
import { EhcError, type ReturnCode } from '../errors.ts';
import type { Identity } from './card.ts';
import { defaultProfile, type CodeProfile } from './profile.ts';
import { pkcs7Pad, pkcs7Unpad } from '../platform/pkcs7.ts';

const HEX_BLOCKS = /^(?:[0-9A-Fa-f]{32})+$/;

/** One field of a code: a value ↔ SM4 blocks, either way of the cipher. */
export interface CodeField<T> {
  /** the blocks to encrypt for `value` (the profile refuses a value it cannot write) */
  plain(value: T): Buffer;
  /** the ciphertext blocks of the field's hex; throws the field's code unless it is hex in whole 16-byte blocks */
  cipher(hex: string): Buffer;
  /** the value in the decrypted blocks; throws the field's code when they do not hold one */
  value(plain: Buffer): T;
}

export interface CodeFields {
  ehcid: CodeField<Identity>;
  validity: CodeField<Date>;
}

/** The fields of codes written in `profile`. */
export function codeFields(profile: CodeProfile = defaultProfile): CodeFields {
  return {
    ehcid: field({ name: 'EHCID', code: '2002', why: 'wrong issuer key or tampered code', write: (id) => profile.identityPlaintext(id), read: (p) => profile.identityFromPlaintext(p) }),
    validity: field({ name: 'VALID', code: '2004', empty: '2003', why: 'wrong key or tampered code', write: (at) => profile.expiryPlaintext(at), read: (p) => profile.expiryFromPlaintext(p) }),
  };
}

interface FieldSpec<T> {
  name: string;
  /** refuses a field that is not hex in whole blocks or does not decrypt */
  code: ReturnCode;
  /** refuses an empty field (VALID on a dynamic code) */
  empty?: ReturnCode;
  /** what a field that does not decrypt most likely is */
  why: string;
  /** the profile's plaintext, unpadded */
  write(value: T): Buffer;
  read(plain: Buffer): T;
}

function field<T>(f: FieldSpec<T>): CodeField<T> {
  return {
    plain: (value) => pkcs7Pad(f.write(value)),
    cipher(hex) {
      if (hex === '' && f.empty) throw new EhcError(f.empty, `${f.name} is empty on a dynamic code`);
      if (!HEX_BLOCKS.test(hex)) throw new EhcError(f.code, `${f.name} must be hex in whole 16-byte blocks`);
      return Buffer.from(hex, 'hex');
    },
    value(plain) {
      const unpadded = pkcs7Unpad(plain);
      if (!unpadded) throw new EhcError(f.code, `${f.name} does not decrypt (${f.why})`);
      return f.read(unpadded);
    },
  };
}

/** A field's text: its ciphertext in upper-case hex. */
export function fieldHex(ciphertext: Uint8Array): string {
  return Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength).toString('hex').toUpperCase();
}
