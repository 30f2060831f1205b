/**
 * SM2 signatures: SDF cards give r‖s (32 + 32 bytes); the interface speaks DER
 * (SEQUENCE { INTEGER r, INTEGER s }, GB/T 35276). No installed package exposes this conversion
 * (node:crypto has none, sm-crypto-v2 keeps its ASN.1 helpers private), so it is here, strict.
 */
function derInt(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  let body = v.subarray(i);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

/** r‖s (64 bytes) → DER */
export function rsToDer(rs: Uint8Array): Buffer {
  if (rs.length !== 64) throw new Error('r‖s must be 64 bytes');
  const b = Buffer.from(rs);
  const body = Buffer.concat([derInt(b.subarray(0, 32)), derInt(b.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** DER → r‖s (64 bytes), or null when it is not a well-formed SM2 signature. */
export function derToRs(der: Uint8Array): Buffer | null {
  const d = Buffer.from(der);
  if (d.length < 8 || d[0] !== 0x30 || d[1] !== d.length - 2) return null;
  const out = Buffer.alloc(64);
  let p = 2;
  for (let k = 0; k < 2; k++) {
    if (d[p] !== 0x02) return null;
    const len = d[p + 1]!;
    if (len < 1 || len > 33 || p + 2 + len > d.length) return null;
    let v = d.subarray(p + 2, p + 2 + len);
    if (v[0]! & 0x80) return null; // negative
    if (len > 1 && v[0] === 0 && !(v[1]! & 0x80)) return null; // not minimal
    if (v.length === 33) v = v.subarray(1);
    v.copy(out, k * 32 + (32 - v.length));
    p += 2 + len;
  }
  return p === d.length ? out : null;
}
