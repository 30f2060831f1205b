/**
 * Keyboard-wedge scanners: 8-byte boot keyboard reports `[modifiers, 0, k1..k6]` decoded with the US
 * layout (0x02/0x20 shift; 0x04–0x1D a–z, 0x1E–0x27 1–0, 0x28 Enter ends a scan; a gap longer than the
 * end-of-scan timeout also ends it).
 *
 * Decision (see drivers/README.md): on Linux a scanner in keyboard mode is ALSO a keyboard for the
 * kernel (hid-input), so every scanned code would be typed into the console or whatever has focus.
 * node-hid cannot open a device exclusively on Linux (node-hid #547) and its maintainers advise
 * against reading keyboard-mode devices (#469, #457, #302). EVIOCGRAB on /dev/input/eventX would stop
 * the leak only while the grab is held, needs a native ioctl binding, and leaves the window between
 * plug-in and grab (and every restart) open. That is not a guarantee, so the driver REFUSES keyboard-
 * mode devices with a message telling the operator how to switch the scanner to HID POS or serial.
 * The decoder below stays: it is tested on recorded reports and is what a future exclusive path needs.
 */
import { ScannerError } from '../src/errors.ts';
import { DEVICE_TABLE, KEYBOARD_DEFAULTS } from './devices.ts';
import type { DeviceInfo, Scanner, ScannerDriver } from './types.ts';

const SHIFT = 0x02 | 0x20;
const ALT_GR = 0x40;

// US layout, HID usage → [unshifted, shifted]
const KEYMAP: Record<number, [string, string]> = {};
for (let i = 0; i < 26; i++) KEYMAP[0x04 + i] = [String.fromCharCode(97 + i), String.fromCharCode(65 + i)];
'1234567890'.split('').forEach((d, i) => (KEYMAP[0x1e + i] = [d, '!@#$%^&*()'[i]!]));
const PUNCT: Array<[number, string, string]> = [
  [0x2c, ' ', ' '], [0x2d, '-', '_'], [0x2e, '=', '+'], [0x2f, '[', '{'], [0x30, ']', '}'], [0x31, '\\', '|'],
  [0x33, ';', ':'], [0x34, "'", '"'], [0x35, '`', '~'], [0x36, ',', '<'], [0x37, '.', '>'], [0x38, '/', '?'],
  [0x2b, '\t', '\t'],
];
for (const [code, a, b] of PUNCT) KEYMAP[code] = [a, b];
const ENTER = 0x28;
const KEYPAD_ENTER = 0x58;

export interface KeyboardScan {
  text: string;
  endedBy: 'enter' | 'timeout';
}

/**
 * Feed 8-byte reports with their arrival time (ms); a key counts when it appears in a report (held
 * keys repeated in the next report are not typed twice).
 */
export class KeyboardReportDecoder {
  #text = '';
  #held = new Set<number>();
  #lastAt = -Infinity;
  readonly #endAfterMs: number;

  constructor(options: { endOfScanTimeoutMs?: number } = {}) {
    this.#endAfterMs = options.endOfScanTimeoutMs ?? KEYBOARD_DEFAULTS.endOfScanTimeoutMs;
  }

  /** Returns scans completed by this report (a timed-out one first, then one ended by Enter). */
  push(report: Buffer | number[], at: number): KeyboardScan[] {
    const out: KeyboardScan[] = [];
    const timedOut = this.flushIfIdle(at);
    if (timedOut) out.push(timedOut);
    const bytes = Buffer.from(report);
    if (bytes.length < 8) return out;
    const modifiers = bytes[0]!;
    const now = new Set<number>();
    for (let i = 2; i < 8; i++) {
      const k = bytes[i]!;
      if (k > 0x03) now.add(k); // 0 = none, 1..3 = rollover/errors
    }
    for (const k of now) {
      if (this.#held.has(k)) continue;
      this.#lastAt = at;
      if (k === ENTER || k === KEYPAD_ENTER) {
        if (this.#text) out.push({ text: this.#text, endedBy: 'enter' });
        this.#text = '';
        continue;
      }
      const entry = KEYMAP[k];
      if (!entry || modifiers & ALT_GR) continue; // outside the US layout: dropped
      this.#text += modifiers & SHIFT ? entry[1] : entry[0];
    }
    this.#held = now;
    return out;
  }

  /** A scan with no Enter ends after the end-of-scan timeout. Call from a timer or before each report. */
  flushIfIdle(at: number): KeyboardScan | undefined {
    if (this.#text && at - this.#lastAt > this.#endAfterMs) {
      const scan: KeyboardScan = { text: this.#text, endedBy: 'timeout' };
      this.#text = '';
      return scan;
    }
    return undefined;
  }
}

/** The message an operator sees when a keyboard-mode scanner is plugged in. */
export function keyboardRefusal(device: Pick<DeviceInfo, 'path' | 'vendorId' | 'productId' | 'model'>): string {
  const hint =
    DEVICE_TABLE.find((d) => d.mode === 'keyboard' && d.vendorId === device.vendorId && d.switchHint)?.switchHint ??
    'scan the "USB HID POS" (or "USB serial / CDC-ACM / virtual COM") interface barcode from the scanner\'s programming guide';
  const id = device.vendorId !== undefined ? ` ${hex4(device.vendorId)}:${hex4(device.productId ?? 0)}` : '';
  return (
    `scanner${id} at ${device.path} is in keyboard (wedge) mode: not used, because on Linux its keystrokes ` +
    `would also be typed into the console and cannot be reliably kept exclusive. Switch it to HID POS or serial mode: ${hint}. ` +
    `It is picked up automatically once it re-enumerates in the new mode.`
  );
}

function hex4(n: number): string {
  return '0x' + n.toString(16).padStart(4, '0');
}

export const hidKeyboardDriver: ScannerDriver = {
  name: 'hid-keyboard',
  async open(device: DeviceInfo): Promise<Scanner> {
    throw new ScannerError(keyboardRefusal(device), { code: '9005' }); // keyboard (wedge) mode is not supported
  },
};
