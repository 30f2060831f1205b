/**
 * HID POS scanners (USB HID usage page 0x8C "Bar Code Scanner"), via node-hid's async API (the sync
 * API ties up a libuv thread per device, node-hid #408).
 *
 * Scanned-data report, Honeywell layout (also Youjie, Datalogic, Newland in HID POS mode):
 *   byte 0      report ID (0x02)
 *   byte 1      count of valid data bytes in this report
 *   bytes 2–4   AIM symbology identifier (`]Q1`); some devices put one extra byte first: find the `]`
 *   bytes 5–60  data
 *   byte 61     vendor code id, 62 reserved
 *   byte 63     continuation flag: 1 = more reports of this scan follow
 * Reports are reassembled until the flag is 0. node-hid reports no unplug: the read error is the
 * signal (node-hid #199, #520), turned into close('unplugged').
 */
import { EventEmitter } from 'node:events';
import HID from 'node-hid';
import { ScannerError } from '../src/errors.ts';
import type { CloseReason, DeviceInfo, Scanner, ScannerDriver, ScannerEvents } from './types.ts';

export const HID_POS_REPORT_ID = 0x02;

export interface HidPosFragment {
  symbology?: string;
  data: Buffer;
  more: boolean;
}

/** Decode one input report. Returns undefined for reports that are not scanned data. */
export function decodeHidPosReport(report: Buffer): HidPosFragment | undefined {
  if (report.length < 6 || report[0] !== HID_POS_REPORT_ID) return undefined;
  const count = report[1]!;
  // the AIM id is at byte 2, or at byte 3 when the device adds a byte before it
  let aimAt = -1;
  if (report[2] === 0x5d) aimAt = 2;
  else if (report[3] === 0x5d) aimAt = 3;
  const dataStart = aimAt === 3 ? 6 : 5;
  const symbology = aimAt >= 0 ? report.subarray(aimAt, aimAt + 3).toString('latin1') : undefined;
  // the flag sits in the last byte of a full 64-byte report; data never reaches it
  const flagAt = report.length >= 64 ? 63 : report.length - 1;
  const dataEnd = Math.min(dataStart + count, report.length >= 64 ? 61 : flagAt);
  return {
    symbology,
    data: Buffer.from(report.subarray(dataStart, Math.max(dataStart, dataEnd))),
    more: report[flagAt] === 1,
  };
}

/** Reassembles a scan from consecutive reports. */
export class HidPosAssembler {
  #parts: Buffer[] = [];
  #symbology: string | undefined;

  /** Feed one report; returns the whole scan when its last report arrived. */
  push(report: Buffer): { text: string; symbology?: string } | undefined {
    const frag = decodeHidPosReport(report);
    if (!frag) return undefined;
    if (this.#parts.length === 0) this.#symbology = frag.symbology;
    this.#parts.push(frag.data);
    if (frag.more) return undefined;
    const text = Buffer.concat(this.#parts).toString('utf8');
    const symbology = this.#symbology;
    this.reset();
    return text ? { text, symbology } : undefined;
  }

  reset(): void {
    this.#parts = [];
    this.#symbology = undefined;
  }
}

class HidPosScanner extends EventEmitter<ScannerEvents> implements Scanner {
  #closing: Promise<void> | undefined;
  #closed = false;
  readonly #hid: HID.HIDAsync;
  readonly #assembler = new HidPosAssembler();

  constructor(
    readonly id: string,
    readonly device: DeviceInfo,
    hid: HID.HIDAsync,
  ) {
    super();
    this.#hid = hid;
    hid.on('data', (report: Buffer) => {
      const scan = this.#assembler.push(report);
      if (scan) this.emit('scan', { scannerId: this.id, text: scan.text, symbology: scan.symbology, at: Date.now() });
    });
    hid.on('error', (err: Error) => {
      // node-hid has no unplug event: a failing read means the device went away
      void this.#shutdown('unplugged', err);
    });
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  async #shutdown(reason: CloseReason, err?: Error): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hid.removeAllListeners('data');
    this.#hid.removeAllListeners('error');
    this.#hid.on('error', () => {});
    this.#assembler.reset();
    try {
      await this.#hid.close();
    } catch {
      // already gone
    }
    this.emit('close', reason, err);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown('closed');
    return this.#closing;
  }
}

export const hidPosDriver: ScannerDriver = {
  name: 'hid-pos',
  async open(device: DeviceInfo, scannerId: string): Promise<Scanner> {
    let hid: HID.HIDAsync;
    try {
      hid = await HID.HIDAsync.open(device.path);
    } catch (err) {
      throw new ScannerError(`cannot open HID POS scanner ${device.path}: ${(err as Error).message}`, { cause: err });
    }
    const feature = device.options.enableFeatureReport;
    if (feature) await hid.sendFeatureReport(feature).catch(() => 0); // best effort: not every model knows it
    return new HidPosScanner(scannerId, device, hid);
  },
};
