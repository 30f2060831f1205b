/**
 * firmware-bridge: the PCI-E crypto card through a GM/T 0018 (SDF) library loaded at run time.
 * Knows nothing of src/: the core's SdfCard (src/crypto/sdf-card.ts) builds on SdfDevice.
 */
export { SdfDevice, type KeySource, type SdfDeviceOptions, type SdfMode, type WrapAlg } from './lib/device.ts';
export { SdfError, SDR, SDR_BASE, SDR_NAMES, sdrName, toSdfError, type SdfErrorKind } from './lib/sdr.ts';
export { QUIRKS, quirksFor, type SdfQuirks } from './lib/quirks.ts';
export { SessionPool, PoolClosedError } from './lib/pool.ts';
export type { NativeDeviceInfo } from './lib/native.ts';
