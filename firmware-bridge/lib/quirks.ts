/**
 * Vendor quirks: where a library deviates from the GM/T 0018/0006 values, in one table. Config
 * `card.sdf.quirks` names an entry; add an entry for a new vendor rather than branching in code.
 */
export interface SdfQuirks {
  readonly name: string;
  /** bytes per ECC coordinate field in ECCrefPublicKey/ECCSignature: 64 (standard) or 32 */
  readonly eccLen: 32 | 64;
  /** algorithm IDs passed to SDF_Encrypt/Decrypt/HashInit/ImportKeyWithKEK */
  readonly alg: { readonly sm4Ecb: number; readonly sm4Cbc: number; readonly sm3: number };
  /** the vendor extension giving a handle on a symmetric key stored at an internal index */
  readonly keyHandleSymbol: string;
  /** algorithm the KEK unwraps imported keys with (SDF_ImportKeyWithKEK uiAlgID) */
  readonly kekAlg: number;
}

const STANDARD_ALG = { sm4Ecb: 0x00000401, sm4Cbc: 0x00000402, sm3: 0x00000001 } as const;

export const QUIRKS: Record<string, SdfQuirks> = {
  /** GM/T 0018-2012 as written (GmSSL SoftSDF, our softsdf) */
  standard: { name: 'standard', eccLen: 64, alg: STANDARD_ALG, keyHandleSymbol: 'SDF_GetSymmKeyHandle', kekAlg: STANDARD_ALG.sm4Ecb },
  /** libraries built with ECCref_MAX_LEN 32 (several vendors' older headers) */
  ecc32: { name: 'ecc32', eccLen: 32, alg: STANDARD_ALG, keyHandleSymbol: 'SDF_GetSymmKeyHandle', kekAlg: STANDARD_ALG.sm4Ecb },
  /** older headers that still call SM4 "SMS4" use the same IDs; kept as an alias so configs read naturally */
  sms4: { name: 'sms4', eccLen: 64, alg: STANDARD_ALG, keyHandleSymbol: 'SDF_GetSymmKeyHandle', kekAlg: STANDARD_ALG.sm4Ecb },
};

export function quirksFor(name: string | undefined): SdfQuirks {
  const q = QUIRKS[name ?? 'standard'];
  if (!q) throw new Error(`unknown card.sdf.quirks "${name}" (known: ${Object.keys(QUIRKS).join(', ')})`);
  return q;
}
