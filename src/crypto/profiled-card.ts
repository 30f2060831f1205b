/**
 * A CryptoCard built from any card's primitives and a code profile: the same health-card answers
 * from SoftCard and SdfCard for the same keys. The fields around the card's SM4 (padding, the profile,
 * error codes) are src/crypto/code-fields.ts, which the simulator's card system uses too.
 */
import type { CardHealth, CardPrimitives, CryptoCard, Identity, KeyIndex, KeyMap, Sm4Mode } from './card.ts';
import { defaultProfile, type CodeProfile } from './profile.ts';
import { codeFields, fieldHex, type CodeFields } from './code-fields.ts';

export class ProfiledCard implements CryptoCard {
  readonly driver: string;
  private readonly fields: CodeFields;
  constructor(
    private readonly card: CardPrimitives,
    readonly keys: KeyMap,
    profile: CodeProfile = defaultProfile,
  ) {
    this.driver = card.driver;
    this.fields = codeFields(profile);
  }

  async decryptEhcid(ehcidHex: string): Promise<Identity> {
    const f = this.fields.ehcid;
    return f.value(await this.card.sm4Decrypt(this.keys.ehcid, f.cipher(ehcidHex), 'ecb'));
  }

  async issueEhcid(identity: Identity): Promise<string> {
    return fieldHex(await this.card.sm4Encrypt(this.keys.ehcid, this.fields.ehcid.plain(identity), 'ecb'));
  }

  async decryptValidity(validHex: string): Promise<Date> {
    const f = this.fields.validity;
    return f.value(await this.card.sm4Decrypt(this.keys.validity, f.cipher(validHex), 'ecb'));
  }

  async issueValidity(expiresAt: Date): Promise<string> {
    return fieldHex(await this.card.sm4Encrypt(this.keys.validity, this.fields.validity.plain(expiresAt), 'ecb'));
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
