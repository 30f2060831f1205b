/**
 * The software SDF card for tests: builds the addon and softsdf when needed (firmware-bridge/build.ts),
 * and lays out a SoftCard key file plus a softsdf key file holding the SAME keys at the config's indexes.
 * When the build is impossible (no cc, no libssl-dev) `built.why` says so and the suites print it.
 */
import path from 'node:path';
import { ensureBuilt, SOFTSDF_PATH, SOFTSDF_ECC32_PATH } from '../../firmware-bridge/build.ts';
import { DEFAULT_KEY_INDEXES, type KeyMap } from '../../src/crypto/card.ts';
import { generateSoftKeys, writeKeyFile, type SoftKeyFile } from '../../src/crypto/soft-card.ts';
import { entriesFromSoftKeyFile, importKeys, type SoftsdfEntry } from '../../tools/card-keys.ts';
import { createLogger } from '../../src/platform/log.ts';

export const built = ensureBuilt();
export { SOFTSDF_PATH, SOFTSDF_ECC32_PATH };
export const quietLog = createLogger({ level: 'error', sink: () => undefined });

export interface CardFixture {
  keys: KeyMap;
  material: SoftKeyFile;
  softKeyFile: string;
  sdfKeyFile: string;
}

/** Fixed demo keys so answers are comparable across runs; `extra` adds softsdf-only entries. */
export function cardFixture(dir: string, extra: SoftsdfEntry[] = [], keys: KeyMap = { ...DEFAULT_KEY_INDEXES }): CardFixture {
  const material: SoftKeyFile = {
    ...generateSoftKeys(),
    ehcid: '0123456789abcdeffedcba9876543210',
    validity: '00112233445566778899aabbccddeeff',
    storage: 'a1a2a3a4a5a6a7a8a9aaabacadaeaf00',
    mac: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
  };
  const softKeyFile = path.join(dir, 'soft.keys.json');
  writeKeyFile(softKeyFile, material);
  const sdfKeyFile = path.join(dir, 'softsdf.keys');
  importKeys(sdfKeyFile, [...entriesFromSoftKeyFile(softKeyFile, keys), ...extra]);
  process.env.SOFTSDF_KEYFILE = sdfKeyFile;
  return { keys, material, softKeyFile, sdfKeyFile };
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
