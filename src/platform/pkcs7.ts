/** PKCS#7 block padding (RFC 5652 §6.3) for 16-byte blocks (SM4): used by the code profile and the dialects. */
const BLOCK = 16;

export function pkcs7Pad(data: Uint8Array): Buffer {
  const n = BLOCK - (data.length % BLOCK);
  return Buffer.concat([Buffer.from(data), Buffer.alloc(n, n)]);
}

/** Returns null when the padding is not valid PKCS#7. */
export function pkcs7Unpad(data: Uint8Array): Buffer | null {
  if (data.length === 0 || data.length % BLOCK !== 0) return null;
  const n = data[data.length - 1]!;
  if (n < 1 || n > BLOCK) return null;
  for (let i = data.length - n; i < data.length; i++) if (data[i] !== n) return null;
  return Buffer.from(data.subarray(0, data.length - n));
}
