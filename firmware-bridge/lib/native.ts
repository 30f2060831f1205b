/** The addon's JS surface (src/addon.cc), loaded with node-gyp-build from firmware-bridge/. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeDeviceInfo {
  issuer: string;
  name: string;
  serial: string;
  deviceVersion: number;
  standardVersion: number;
  asymAlgAbility: [number, number];
  symAlgAbility: number;
  hashAlgAbility: number;
  bufferSize: number;
}

export interface NativeSession {
  readonly closed: boolean;
  close(): Promise<void>;
  deviceInfo(): Promise<NativeDeviceInfo>;
  random(length: number): Promise<Buffer>;
  keyByIndex(slot: number, index: number): Promise<void>;
  keyWithKek(slot: number, algId: number, kekIndex: number, wrapped: Uint8Array): Promise<void>;
  /** SDF_GenerateKeyWithKEK: the key stays in `slot`; resolves with its blob wrapped under the KEK */
  generateKeyWithKek(slot: number, keyBits: number, algId: number, kekIndex: number, maxBlob: number): Promise<Buffer>;
  /** SDF_ImportKeyWithISK_ECC of the envelope C1 = (x, y), C3 = hash, C2 = c */
  keyWithIsk(slot: number, iskIndex: number, x: Uint8Array, y: Uint8Array, hash: Uint8Array, c: Uint8Array): Promise<void>;
  /** X‖Y, 64 bytes */
  exportEncPublicKey(index: number): Promise<Buffer>;
  hasKey(slot: number): boolean;
  encrypt(slot: number, algId: number, iv: Uint8Array | null, data: Uint8Array): Promise<Buffer>;
  decrypt(slot: number, algId: number, iv: Uint8Array | null, data: Uint8Array): Promise<Buffer>;
  /** HashInit (+ZA when publicKey X‖Y and id are given), HashUpdate, HashFinal */
  hash(algId: number, data: Uint8Array, publicKeyXY: Uint8Array | null, id: Uint8Array | null): Promise<Buffer>;
  accessRight(index: number, password: Uint8Array): Promise<void>;
  /** X‖Y, 64 bytes */
  exportSignPublicKey(index: number): Promise<Buffer>;
  /** r‖s, 64 bytes, of the digest e */
  internalSign(index: number, digest: Uint8Array): Promise<Buffer>;
  internalVerify(index: number, digest: Uint8Array, rs: Uint8Array): Promise<boolean>;
}

export interface NativeLibrary {
  readonly symbols: string[];
  readonly deviceOpen: boolean;
  readonly sessions: number;
  openDevice(): Promise<void>;
  closeDevice(): Promise<void>;
  openSession(): Promise<NativeSession>;
}

export interface NativeAddon {
  /** serialiseLifecycle: false only to measure what a lock-free library does without the addon's lock */
  Library: new (path: string, options: { eccLen: number; keyHandleSymbol?: string; serialiseLifecycle?: boolean }) => NativeLibrary;
  SDR_BASE: number;
}

let cached: NativeAddon | undefined;

/** Throws when the addon is not built (`npm run build:bridge`). */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => unknown;
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  try {
    cached = load(dir) as NativeAddon;
  } catch (err) {
    throw new Error(`firmware-bridge addon is not built (run: npm run build:bridge): ${(err as Error).message}`, { cause: err });
  }
  return cached;
}
