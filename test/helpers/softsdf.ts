/**
 * The software SDF card for tests: builds the addon and softsdf when needed (firmware-bridge/build.ts),
 * and lays out a SoftCard key file plus a softsdf card holding the SAME keys.
 *
 * The softsdf key file holds only what a vendor puts in a card (a KEK, the SM2 sign and encryption
 * pairs); the application keys reach the card the standard's way: as digital envelopes made with an
 * independent SM2 implementation (sm-crypto-v2) to the card's encryption key, in `fixture.sdf`.
 *
 * EHC_SDF_LIBRARY=/path/libX.so runs the same suites against another GM/T 0018 library: its device
 * keys then come from that library's own store, described by EHC_SDF_DEVICE (JSON:
 * {"isk": 1, "encPublicKey": "04…", "sign": 1, "signPublicKey": "04…", "kek": 40, "keyPassword": "…"}).
 * When the build is impossible (no cc, no libssl-dev) `built.why` says so and the suites skip.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sm2 } from 'sm-crypto-v2';
import { ensureBuilt, SOFTSDF_PATH, SOFTSDF_ECC32_PATH, SOFTSDF_VENDOR_PATH } from '../../firmware-bridge/build.ts';
import { DEFAULT_KEY_INDEXES, type KeyMap } from '../../src/crypto/card.ts';
import type { SdfConfig } from '../../src/crypto/sdf-card.ts';
import { generateSoftKeys, writeKeyFile, type SoftKeyFile } from '../../src/crypto/soft-card.ts';
import { importKeys, sealEnvelope, type SoftsdfEntry } from '../../tools/card-keys.ts';
import { createLogger } from '../../src/platform/log.ts';

export const built = ensureBuilt();
export { SOFTSDF_PATH, SOFTSDF_ECC32_PATH, SOFTSDF_VENDOR_PATH };
export const quietLog = createLogger({ level: 'error', sink: () => undefined });

/** The library under test: ours unless EHC_SDF_LIBRARY names another. */
export const LIBRARY = process.env.EHC_SDF_LIBRARY || SOFTSDF_PATH;
export const EXTERNAL_LIBRARY = Boolean(process.env.EHC_SDF_LIBRARY);

/** The card's own keys: what the vendor's tool put in the device. */
export interface DeviceKeys {
  isk: number;
  encPublicKey: string;
  sign: number;
  /** the SM2 sign pair (the private half only for softsdf, so SoftCard can hold the same key) */
  signPair?: { private: string; public: string };
  signPublicKey?: string;
  kek: number;
  kekKey?: string;
  keyPassword?: string;
}

export const DEMO_KEK = '2b7e151628aed2a6abf7158809cf4f3c';
const DEMO_ENC = {
  private: '3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8',
};

export interface CardFixture {
  keys: KeyMap;
  material: SoftKeyFile;
  softKeyFile: string;
  sdfKeyFile: string;
  device: DeviceKeys;
  /** card.sdf for the library under test, keys as envelopes */
  sdf: SdfConfig;
}

function externalDevice(): DeviceKeys {
  const raw = process.env.EHC_SDF_DEVICE;
  if (!raw) throw new Error('EHC_SDF_LIBRARY is set: EHC_SDF_DEVICE must describe its keys (see test/helpers/softsdf.ts)');
  return JSON.parse(raw.trim().startsWith('{') ? raw : readFileSync(raw, 'utf8')) as DeviceKeys;
}

/**
 * Fixed demo keys so answers are comparable across runs; `extra` adds softsdf-only entries (a PIN, a
 * second KEK …). With an external library only its own device keys exist and `extra` must be empty.
 */
export function cardFixture(dir: string, extra: SoftsdfEntry[] = [], keys: KeyMap = { ...DEFAULT_KEY_INDEXES }): CardFixture {
  const material: SoftKeyFile = {
    ...generateSoftKeys(),
    ehcid: '0123456789abcdeffedcba9876543210',
    validity: '00112233445566778899aabbccddeeff',
    storage: 'a1a2a3a4a5a6a7a8a9aaabacadaeaf00',
    mac: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
  };
  const sdfKeyFile = path.join(dir, 'softsdf.keys');
  let device: DeviceKeys;
  if (EXTERNAL_LIBRARY) {
    device = externalDevice();
  } else {
    const encPublic = sm2.getPublicKeyFromPrivateKey(DEMO_ENC.private);
    device = { isk: keys.sign, encPublicKey: encPublic, sign: keys.sign, signPair: material.sm2 as { private: string; public: string }, kek: 40, kekKey: DEMO_KEK };
    importKeys(sdfKeyFile, [
      { kind: 'sym', index: device.kek, key: DEMO_KEK },
      { kind: 'sm2', index: keys.sign, private: material.sm2.private, public: sm2.getPublicKeyFromPrivateKey(material.sm2.private) },
      { kind: 'sm2enc', index: device.isk, private: DEMO_ENC.private, public: encPublic },
      ...extra,
    ]);
    process.env.SOFTSDF_KEYFILE = sdfKeyFile;
  }
  const softKeyFile = path.join(dir, 'soft.keys.json');
  writeKeyFile(softKeyFile, material);
  const envelopes = {
    ehcid: sealEnvelope(device.encPublicKey, material.ehcid),
    validity: sealEnvelope(device.encPublicKey, material.validity),
    storage: sealEnvelope(device.encPublicKey, material.storage),
    mac: sealEnvelope(device.encPublicKey, material.mac),
  };
  const sdf: SdfConfig = { library: LIBRARY, isk: device.isk, envelopes, ...(device.keyPassword ? { keyPassword: device.keyPassword } : {}) };
  return { keys, material, softKeyFile, sdfKeyFile, device, sdf };
}

/** Run `fn` with SOFTSDF_FAIL / SOFTSDF_DELAY_MS set, always restoring them. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}
