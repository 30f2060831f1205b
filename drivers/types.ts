/**
 * One interface for every scanner family. A driver opens a detected device and returns a Scanner;
 * a Scanner emits `scan`, `error` and `close`. `close()` is idempotent; an unplug is a `close` event
 * with reason 'unplugged', never an exception.
 */
import type { EventEmitter } from 'node:events';
import type { SerialFraming } from '../src/config/schema.ts';

export type DriverName = 'serial' | 'hid-pos' | 'hid-keyboard';

/** What the scanner read, as the driver delivers it (AIM prefix already stripped). */
export interface ScanEvent {
  scannerId: string;
  text: string;
  /** AIM symbology identifier as sent by the scanner, e.g. `]Q1` (QR), when it sent one */
  symbology?: string;
  /** ms since epoch, when the last byte of the scan arrived */
  at: number;
}

export type CloseReason = 'closed' | 'unplugged' | 'error';

/** Options a device-table entry or the config can set for one device. */
export interface DeviceOptions extends SerialFraming {
  /** keyboard wedge: end a scan after this gap when no Enter comes */
  interKeyTimeoutMs?: number;
  /** HID POS: feature report that switches the device into HID POS mode, sent once on open */
  enableFeatureReport?: number[];
}

/** A device found on the machine (or named in the config), ready to be opened. */
export interface DeviceInfo {
  driver: DriverName;
  /** what is opened: /dev/ttyACM0, /dev/hidraw3, a pty symlink */
  path: string;
  /** stable physical location the scannerId is derived from (USB port devpath, by-path name, or the path) */
  location: string;
  vendorId?: number;
  productId?: number;
  usagePage?: number;
  usage?: number;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  /** device-table entry that matched, if any */
  model?: string;
  options: DeviceOptions;
}

export interface ScannerEvents {
  scan: [ScanEvent];
  error: [Error];
  close: [CloseReason, Error | undefined];
}

export interface Scanner extends EventEmitter<ScannerEvents> {
  readonly id: string;
  readonly device: DeviceInfo;
  readonly isOpen: boolean;
  /** Idempotent: resolves once the device is released; emits `close` ('closed') at most once. */
  close(): Promise<void>;
}

export interface ScannerDriver {
  readonly name: DriverName;
  /** Open the device. Rejects (EhcError) when it cannot be used; never throws after resolving. */
  open(device: DeviceInfo, scannerId: string): Promise<Scanner>;
}

/** AIM symbology identifier: `]` + code character + modifier character (ISO/IEC 15424). */
const AIM = /^\][A-Za-z0-9][0-9A-Za-z]/;

/** Split a leading AIM identifier (`]Q1…`) off a scanned text. */
export function stripAim(text: string): { text: string; symbology?: string } {
  const m = AIM.exec(text);
  return m ? { text: text.slice(3), symbology: m[0] } : { text };
}
