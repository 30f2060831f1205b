/**
 * The one interface every crypto card implements: the embedded SoftCard and the PCI-E SdfCard
 * (firmware-bridge). Keys are addressed by index; key material never crosses this interface.
 *
 * A card offers primitives (SM4 on whole blocks, SM3, HMAC-SM3, random, SM2); the health-card
 * operations (decrypt EHCID, validity) are built on them by a replaceable code profile
 * (src/crypto/profile.ts) in `ProfiledCard`, so every card gives the same answers for the same keys.
 */
export type KeyIndex = number;

import { DEFAULT_KEY_INDEXES } from '../config/schema.ts';

/** Default key indexes (the config's default for `card.keys`, which may remap them to a real card's). */
export { DEFAULT_KEY_INDEXES };

export type KeyRole = keyof typeof DEFAULT_KEY_INDEXES;
export type KeyMap = Record<KeyRole, KeyIndex>;

export interface Identity {
  /** 证件类型, e.g. `01` resident ID card */
  idType: string;
  /** 证件号码 */
  idNo: string;
}

export interface CardHealth {
  ok: boolean;
  driver: string;
  /** human readable: `ready`, `library not loadable: …`, `device removed` … */
  detail: string;
  device?: Record<string, string | number>;
}

export type Sm4Mode = 'ecb' | 'cbc';

/** What a card itself offers. SM4 works on whole 16-byte blocks: padding is the caller's job. */
export interface CardPrimitives {
  readonly driver: string;
  sm4Encrypt(key: KeyIndex, data: Uint8Array, mode?: Sm4Mode, iv?: Uint8Array): Promise<Buffer>;
  sm4Decrypt(key: KeyIndex, data: Uint8Array, mode?: Sm4Mode, iv?: Uint8Array): Promise<Buffer>;
  sm3(data: Uint8Array): Promise<Buffer>;
  hmacSm3(key: KeyIndex, data: Uint8Array): Promise<Buffer>;
  random(length: number): Promise<Buffer>;
  /** SM2 signature (GB/T 32918, ZA with user ID, default `1234567812345678`), DER encoded. */
  sm2Sign(key: KeyIndex, message: Uint8Array): Promise<Buffer>;
  sm2Verify(key: KeyIndex, message: Uint8Array, derSignature: Uint8Array): Promise<boolean>;
  /** Uncompressed public key `04‖X‖Y` for registration (表6.5). */
  sm2PublicKey(key: KeyIndex): Promise<Buffer>;
  health(): Promise<CardHealth>;
  close(): Promise<void>;
}

/** The health-card operations the verifier and tools use. */
export interface CryptoCard extends CardPrimitives {
  readonly keys: KeyMap;
  /** EHCID hex → 证件类型 + 证件号码. Throws EhcError 2002 when it does not decrypt to an identity. */
  decryptEhcid(ehcidHex: string): Promise<Identity>;
  issueEhcid(identity: Identity): Promise<string>;
  /** VALID hex → expiry. 2003 when empty, 2004 when it does not decrypt to a time. */
  decryptValidity(validHex: string): Promise<Date>;
  issueValidity(expiresAt: Date): Promise<string>;
}
