/**
 * Vendor quirks: where a library deviates from GM/T 0018/0006, in one table. By default the bridge uses
 * only what the standard defines; config `card.sdf.quirks` names an entry and a site picks the one its
 * vendor needs. Each entry says which vendor and which source it comes from. Add an entry for a new
 * vendor rather than branching in code.
 */
export interface SdfQuirks {
  readonly name: string;
  /** the libraries this entry is for */
  readonly vendor: string;
  /** where the deviation is documented (a manual, a public header or loader) */
  readonly source: string;
  /** bytes per ECC coordinate field in ECCrefPublicKey/ECCSignature/ECCCipher: 64 (standard) or 32 */
  readonly eccLen: 32 | 64;
  /** algorithm IDs passed to SDF_Encrypt/Decrypt/HashInit/…KeyWithKEK */
  readonly alg: { readonly sm4Ecb: number; readonly sm4Cbc: number; readonly sm3: number };
  /**
   * A vendor extension giving a handle on a symmetric key stored at an internal index (not in the
   * standard), or null: then keys reach a session only through SDF_ImportKeyWithKEK / the envelope.
   */
  readonly keyHandleSymbol: string | null;
}

const STANDARD_ALG = { sm4Ecb: 0x00000401, sm4Cbc: 0x00000402, sm3: 0x00000001 } as const;
const STANDARD = { eccLen: 64, alg: STANDARD_ALG, keyHandleSymbol: null } as const;

export const QUIRKS: Record<string, SdfQuirks> = {
  standard: {
    name: 'standard',
    vendor: 'any library that follows GM/T 0018-2012 (GmSSL SoftSDF, ehc-edge softsdf)',
    source: 'GM/T 0018-2012 (structures, SDF_* functions), GM/T 0006-2012 (algorithm IDs)',
    ...STANDARD,
  },
  ecc32: {
    name: 'ecc32',
    vendor: 'libraries built with ECCref_MAX_LEN 32 (several vendors\' older headers)',
    source: 'vendor sdf.h headers that define ECCref_MAX_BITS 256; /work/shared/docs/field-notes.md "GM/T 0018 SDF"',
    ...STANDARD,
    eccLen: 32,
  },
  sms4: {
    name: 'sms4',
    vendor: 'older headers that still call SM4 "SMS4" (SGD_SMS4_ECB …) with the standard IDs',
    source: 'GM/T 0006 draft naming; same numeric IDs, kept as an alias so configs read naturally',
    ...STANDARD,
  },
  'sym-key-handle': {
    name: 'sym-key-handle',
    vendor: 'vendor libraries that export SDF_GetSymmKeyHandle (keys by internal index; e.g. Sansec-style swsds libraries)',
    source: 'vendor extension, not in GM/T 0018: /work/shared/docs/field-notes.md "Crypto-card libraries"; confirm the symbol in the vendor manual',
    ...STANDARD,
    keyHandleSymbol: 'SDF_GetSymmKeyHandle',
  },
};

export function quirksFor(name: string | undefined): SdfQuirks {
  const q = QUIRKS[name ?? 'standard'];
  if (!q) throw new Error(`unknown card.sdf.quirks "${name}" (known: ${Object.keys(QUIRKS).join(', ')})`);
  return q;
}
