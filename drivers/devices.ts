/**
 * Data-only table of supported scanners, in the style of zigbee-herdsman's adapter fingerprints:
 * each entry says how to recognise a device (VID/PID, HID usage page/usage, path pattern) and which
 * driver and options to use. One model often has several USB personalities with different product
 * IDs (Zebra 0x05E0: 0x1200 keyboard, 0x1300 HID POS, 0x0600 CDC serial), so HID entries also match on
 * usage page. No code here: matching lives in drivers/registry.ts.
 *
 * `mode: 'keyboard'` entries are recognised so they can be refused with a clear message (see README).
 */
import type { DeviceOptions, DriverName } from './types.ts';

export type ScannerMode = 'hid-pos' | 'keyboard' | 'cdc-acm' | 'rs232';

export interface DeviceFingerprint {
  model: string;
  driver: DriverName;
  mode: ScannerMode;
  vendorId?: number;
  productId?: number;
  /** HID usage page / usage of the top-level collection */
  usagePage?: number;
  usage?: number;
  /** device path patterns (serial): matched against /dev/<name> */
  pathPatterns?: string[];
  /** how to switch this model out of keyboard mode (shown to the operator) */
  switchHint?: string;
  options?: DeviceOptions;
}

/** HID usage page 0x8C "Bar Code Scanner", application usage 0x02. */
export const HID_POS_USAGE_PAGE = 0x8c;
export const HID_GENERIC_DESKTOP = 0x01;
export const HID_USAGE_KEYBOARD = 0x06;

const CDC = ['/dev/ttyACM*'];
const USB_SERIAL = ['/dev/ttyACM*', '/dev/ttyUSB*'];
const HONEYWELL_SWITCH =
  'scan the "USB HID POS" programming barcode from the scanner\'s user guide (or "USB Serial Emulation" for CDC-ACM serial); ' +
  'Honeywell/Youjie also accept feature report 0xFE [0x01]';
const ZEBRA_SWITCH = 'scan the "USB OPOS (HID POS)" or "USB CDC Host" barcode from the Zebra product reference guide';
const DATALOGIC_SWITCH = 'scan the "USB-COM" or "USB HID POS" interface barcode from the Datalogic quick reference guide';
const NEWLAND_SWITCH = 'scan the "USB HID-POS" or "USB CDC (virtual COM)" barcode from the Newland programming manual';

export const DEVICE_TABLE: readonly DeviceFingerprint[] = [
  // Zebra / Symbol
  { model: 'Zebra (Symbol) DS/LS series, HID POS', driver: 'hid-pos', mode: 'hid-pos', vendorId: 0x05e0, productId: 0x1300, usagePage: HID_POS_USAGE_PAGE },
  { model: 'Zebra (Symbol) DS/LS series, CDC serial', driver: 'serial', mode: 'cdc-acm', vendorId: 0x05e0, productId: 0x0600, pathPatterns: CDC, options: { suffix: 'CR' } },
  { model: 'Zebra (Symbol) DS/LS series, keyboard', driver: 'hid-keyboard', mode: 'keyboard', vendorId: 0x05e0, productId: 0x1200, usagePage: HID_GENERIC_DESKTOP, usage: HID_USAGE_KEYBOARD, switchHint: ZEBRA_SWITCH },
  // Honeywell (incl. Metrologic, Hand Held Products) and Youjie: personalities share the vendor ID
  // (feature report 0xFE [0x01] switches these into HID POS; not sent on open: a device already in HID POS
  // mode might re-enumerate on it, and one in keyboard mode is refused before it could be sent)
  { model: 'Honeywell / Youjie, HID POS', driver: 'hid-pos', mode: 'hid-pos', vendorId: 0x0c2e, usagePage: HID_POS_USAGE_PAGE },
  { model: 'Honeywell / Youjie, USB serial', driver: 'serial', mode: 'cdc-acm', vendorId: 0x0c2e, pathPatterns: CDC, options: { suffix: 'CR' } },
  { model: 'Honeywell / Youjie, keyboard', driver: 'hid-keyboard', mode: 'keyboard', vendorId: 0x0c2e, usagePage: HID_GENERIC_DESKTOP, usage: HID_USAGE_KEYBOARD, switchHint: HONEYWELL_SWITCH },
  // Datalogic
  { model: 'Datalogic, HID POS', driver: 'hid-pos', mode: 'hid-pos', vendorId: 0x05f9, usagePage: HID_POS_USAGE_PAGE },
  { model: 'Datalogic, USB-COM', driver: 'serial', mode: 'cdc-acm', vendorId: 0x05f9, pathPatterns: CDC, options: { suffix: 'CR' } },
  { model: 'Datalogic, keyboard', driver: 'hid-keyboard', mode: 'keyboard', vendorId: 0x05f9, usagePage: HID_GENERIC_DESKTOP, usage: HID_USAGE_KEYBOARD, switchHint: DATALOGIC_SWITCH },
  // Newland (common in Chinese hospitals)
  { model: 'Newland, HID POS', driver: 'hid-pos', mode: 'hid-pos', vendorId: 0x1eab, usagePage: HID_POS_USAGE_PAGE },
  { model: 'Newland, USB CDC', driver: 'serial', mode: 'cdc-acm', vendorId: 0x1eab, pathPatterns: CDC, options: { suffix: 'CR' } },
  { model: 'Newland, keyboard', driver: 'hid-keyboard', mode: 'keyboard', vendorId: 0x1eab, usagePage: HID_GENERIC_DESKTOP, usage: HID_USAGE_KEYBOARD, switchHint: NEWLAND_SWITCH },
  // Any HID device declaring the Bar Code Scanner usage page is a HID POS scanner
  { model: 'generic HID POS scanner (usage page 0x8C)', driver: 'hid-pos', mode: 'hid-pos', usagePage: HID_POS_USAGE_PAGE },
  // RS-232 scanners behind USB-serial adapters cannot be told from other serial devices: config only
  { model: 'RS-232 scanner (configured path)', driver: 'serial', mode: 'rs232', pathPatterns: [...USB_SERIAL, '/dev/ttyS*'], options: { baudRate: 9600, suffix: 'CR' } },
];

/** Defaults when neither the table nor the config says otherwise. */
export const SERIAL_DEFAULTS: Required<Pick<DeviceOptions, 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'suffix' | 'interCharTimeoutMs'>> = {
  baudRate: 9600,
  dataBits: 8,
  parity: 'none',
  stopBits: 1,
  suffix: 'CR',
  interCharTimeoutMs: 50,
};
export const KEYBOARD_DEFAULTS = { interKeyTimeoutMs: 40, endOfScanTimeoutMs: 200 } as const;
