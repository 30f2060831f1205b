/**
 * A CryptoCard built from any card's primitives and a code profile: the same health-card answers
 * from SoftCard and SdfCard for the same keys.
 */
import { EhcError } from '../errors.ts';
import type { CardHealth, CardPrimitives, CryptoCard, Identity, KeyIndex, KeyMap, Sm4Mode } from './card.ts';
import { defaultProfile, type CodeProfile } from './profile.ts';
import { pkcs7Pad, pkcs7Unpad } from '../platform/pkcs7.ts';

const HEX_BLOCKS = /^(?:[0-9A-Fa-f]{32})+$/;

export class ProfiledCard implements CryptoCard {
  readonly driver: string;
  constructor(
    private readonly card: CardPrimitives,
    readonly keys: KeyMap,
    private readonly profile: CodeProfile = defaultProfile,
  ) {
    this.driver = card.driver;
  }

  async decryptEhcid(ehcidHex: string): Promise<Identity> {
    if (!HEX_BLOCKS.test(ehcidHex)) throw new EhcError('2002', 'EHCID must be hex in whole 16-byte blocks');
    const plain = pkcs7Unpad(await this.card.sm4Decrypt(this.keys.ehcid, Buffer.from(ehcidHex, 'hex'), 'ecb'));
    if (!plain) throw new EhcError('2002', 'EHCID does not decrypt (wrong issuer key or tampered code)');
    return this.profile.identityFromPlaintext(plain);
  }

  async issueEhcid(identity: Identity): Promise<string> {
    const ct = await this.card.sm4Encrypt(this.keys.ehcid, pkcs7Pad(this.profile.identityPlaintext(identity)), 'ecb');
    return ct.toString('hex').toUpperCase();
  }

  async decryptValidity(validHex: string): Promise<Date> {
    if (validHex === '') throw new EhcError('2003', 'VALID is empty on a dynamic code');
    if (!HEX_BLOCKS.test(validHex)) throw new EhcError('2004', 'VALID must be hex in whole 16-byte blocks');
    const plain = pkcs7Unpad(await this.card.sm4Decrypt(this.keys.validity, Buffer.from(validHex, 'hex'), 'ecb'));
    if (!plain) throw new EhcError('2004', 'VALID does not decrypt (wrong key or tampered code)');
    return this.profile.expiryFromPlaintext(plain);
  }

  async issueValidity(expiresAt: Date): Promise<string> {
    const ct = await this.card.sm4Encrypt(this.keys.validity, pkcs7Pad(this.profile.expiryPlaintext(expiresAt)), 'ecb');
    return ct.toString('hex').toUpperCase();
  }

  sm4Encrypt(key: KeyIndex, data: Uint8Array, mode?: Sm4Mode, iv?: Uint8Array) { return this.card.sm4Encrypt(key, data, mode, iv); }
  sm4Decrypt(key: KeyIndex, data: Uint8Array, mode?: Sm4Mode, iv?: Uint8Array) { return this.card.sm4Decrypt(key, data, mode, iv); }
  sm3(data: Uint8Array) { return this.card.sm3(data); }
  hmacSm3(key: KeyIndex, data: Uint8Array) { return this.card.hmacSm3(key, data); }
  random(length: number) { return this.card.random(length); }
  sm2Sign(key: KeyIndex, message: Uint8Array) { return this.card.sm2Sign(key, message); }
  sm2Verify(key: KeyIndex, message: Uint8Array, sig: Uint8Array) { return this.card.sm2Verify(key, message, sig); }
  sm2PublicKey(key: KeyIndex) { return this.card.sm2PublicKey(key); }
  health(): Promise<CardHealth> { return this.card.health(); }
  close() { return this.card.close(); }
}
