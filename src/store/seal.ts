/**
 * Encryption at rest for the outbox: SM4-CBC (PKCS#7, fresh random IV per record) under the card's
 * storage key, then HMAC-SM3 under the card's MAC key over `aad ‖ iv ‖ ciphertext` (encrypt-then-MAC).
 * Keys never leave the card: this module only calls CardPrimitives by key index.
 */
import { timingSafeEqual } from 'node:crypto';
import type { CardPrimitives, KeyIndex } from '../crypto/card.ts';
import { EhcError, asEhcError } from '../errors.ts';
import { pkcs7Pad, pkcs7Unpad } from '../platform/pkcs7.ts';

export interface SealKeys {
  storage: KeyIndex;
  mac: KeyIndex;
}

export interface Sealed {
  iv: Buffer;
  body: Buffer;
  mac: Buffer;
}

const IV_BYTES = 16; // one SM4 block

function lengthPrefixed(aad: Buffer, iv: Buffer, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(aad.length);
  return Buffer.concat([len, aad, iv, body]);
}

export class RecordSealer {
  constructor(
    private readonly card: CardPrimitives,
    private readonly keys: SealKeys,
  ) {}

  /** Encrypt `plain`; `aad` (clear columns stored beside it) is bound into the MAC. */
  async seal(plain: Uint8Array, aad: Buffer): Promise<Sealed> {
    try {
      const iv = await this.card.random(IV_BYTES);
      const body = await this.card.sm4Encrypt(this.keys.storage, pkcs7Pad(plain), 'cbc', iv);
      const mac = await this.card.hmacSm3(this.keys.mac, lengthPrefixed(aad, iv, body));
      return { iv, body, mac };
    } catch (err) {
      throw asEhcError(err, '8008', 'outbox: sealing a record with the crypto card failed');
    }
  }

  /** Check the MAC (9003 when it does not match), then decrypt. */
  async open(sealed: Sealed, aad: Buffer): Promise<Buffer> {
    let expected: Buffer;
    try {
      expected = await this.card.hmacSm3(this.keys.mac, lengthPrefixed(aad, sealed.iv, sealed.body));
    } catch (err) {
      throw asEhcError(err, '8008', 'outbox: HMAC-SM3 with the crypto card failed');
    }
    if (expected.length !== sealed.mac.length || !timingSafeEqual(expected, sealed.mac)) {
      throw new EhcError('9003', 'outbox record failed its HMAC-SM3 integrity check (tampered or wrong key)');
    }
    let padded: Buffer;
    try {
      padded = await this.card.sm4Decrypt(this.keys.storage, sealed.body, 'cbc', sealed.iv);
    } catch (err) {
      throw asEhcError(err, '8008', 'outbox: SM4 decryption with the crypto card failed');
    }
    const plain = pkcs7Unpad(padded);
    if (!plain) throw new EhcError('9007', 'outbox record: bad PKCS#7 padding');
    return plain;
  }
}
