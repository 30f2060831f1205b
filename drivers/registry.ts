/**
 * Finds scanners on the machine and says which driver opens them: configured paths, USB serial
 * ttys from sysfs, HID devices from node-hid, each matched against the device table.
 *
 * Serial ttys are read from sysfs rather than SerialPort.list(): that one spawns `udevadm` (absent on
 * minimal systems and in containers), skips ptys, and is too slow to run on every hotplug poll.
 */
import { readdirSync, readFileSync, realpathSync, existsSync } from 'node:fs';
import path from 'node:path';
import HID from 'node-hid';
import type { ScannerConfig } from '../src/config/schema.ts';
import { DEVICE_TABLE, HID_GENERIC_DESKTOP, HID_POS_USAGE_PAGE, HID_USAGE_KEYBOARD, type DeviceFingerprint } from './devices.ts';
import { serialDriver } from './serial.ts';
import { hidPosDriver } from './hid-pos.ts';
import { hidKeyboardDriver } from './hid-keyboard.ts';
import type { DeviceInfo, DeviceOptions, DriverName, ScannerDriver } from './types.ts';

export const DRIVERS: Record<DriverName, ScannerDriver> = {
  serial: serialDriver,
  'hid-pos': hidPosDriver,
  'hid-keyboard': hidKeyboardDriver,
};

export interface Candidate {
  kind: 'tty' | 'hid';
  path: string;
  vendorId?: number;
  productId?: number;
  usagePage?: number;
  usage?: number;
}

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
  return re.test(value);
}

/** The first device-table entry that fits (entries are ordered most specific first). */
export function matchFingerprint(c: Candidate, table: readonly DeviceFingerprint[] = DEVICE_TABLE): DeviceFingerprint | undefined {
  return table.find((f) => {
    if (f.vendorId !== undefined && f.vendorId !== c.vendorId) return false;
    if (f.productId !== undefined && f.productId !== c.productId) return false;
    if (c.kind === 'hid') {
      if (f.driver === 'serial') return false;
      if (f.usagePage !== undefined && f.usagePage !== c.usagePage) return false;
      if (f.usage !== undefined && f.usage !== c.usage) return false;
      return true;
    }
    if (f.driver !== 'serial') return false;
    if (f.vendorId === undefined) return false; // generic serial entries are for configured paths only
    // patterns name kernel devices (/dev/ttyACM*): compare with the node's kernel name
    const kernelName = '/dev/' + path.basename(c.path);
    return (f.pathPatterns ?? []).some((p) => globMatch(p, kernelName));
  });
}

export interface SysfsRoots {
  sys: string;
  dev: string;
}
const DEFAULT_ROOTS: SysfsRoots = { sys: '/sys', dev: '/dev' };

function readHex(file: string): number | undefined {
  try {
    return parseInt(readFileSync(file, 'utf8').trim(), 16);
  } catch {
    return undefined;
  }
}

/** Physical USB location of a sysfs device: the interface dir like `1-1.2:1.0`, else the devpath. */
export function usbLocation(sysDevice: string): { location: string; vendorId?: number; productId?: number } {
  let real: string;
  try {
    real = realpathSync(sysDevice);
  } catch {
    return { location: sysDevice };
  }
  const iface = real.split('/').reverse().find((p) => /^\d+-[\d.]+:\d+\.\d+$/.test(p));
  let dir = real;
  for (let i = 0; i < 6 && dir !== '/'; i++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'idVendor'))) {
      return { location: iface ? `usb-${iface}` : real, vendorId: readHex(path.join(dir, 'idVendor')), productId: readHex(path.join(dir, 'idProduct')) };
    }
  }
  return { location: iface ? `usb-${iface}` : real };
}

/** USB serial ttys (ttyACM*, ttyUSB*) with their USB IDs and port location. */
export function listSerialTtys(roots: SysfsRoots = DEFAULT_ROOTS): Array<Candidate & { location: string }> {
  let names: string[];
  try {
    names = readdirSync(path.join(roots.sys, 'class/tty')).filter((n) => /^tty(ACM|USB)\d+$/.test(n));
  } catch {
    return [];
  }
  return names.map((n) => {
    const loc = usbLocation(path.join(roots.sys, 'class/tty', n, 'device'));
    return { kind: 'tty' as const, path: path.join(roots.dev, n), ...loc };
  });
}

/** HID devices via node-hid (one entry per top-level collection), with their port location. */
export async function listHidDevices(roots: SysfsRoots = DEFAULT_ROOTS): Promise<Array<Candidate & { location: string; manufacturer?: string; product?: string; serialNumber?: string }>> {
  if (!existsSync(path.join(roots.sys, 'class/hidraw'))) return [];
  let devices: HID.Device[];
  try {
    devices = await HID.devicesAsync();
  } catch {
    return [];
  }
  return devices
    .filter((d): d is HID.Device & { path: string } => typeof d.path === 'string')
    .map((d) => {
      const name = path.basename(d.path);
      const loc = usbLocation(path.join(roots.sys, 'class/hidraw', name, 'device'));
      return {
        kind: 'hid' as const,
        path: d.path,
        vendorId: d.vendorId,
        productId: d.productId,
        usagePage: d.usagePage,
        usage: d.usage,
        manufacturer: d.manufacturer,
        product: d.product,
        serialNumber: d.serialNumber,
        location: loc.location,
      };
    });
}

function configOptions(c: ScannerConfig): DeviceOptions {
  const o: DeviceOptions = {};
  if (c.baudRate !== undefined) o.baudRate = c.baudRate;
  if (c.dataBits !== undefined) o.dataBits = c.dataBits;
  if (c.parity !== undefined) o.parity = c.parity;
  if (c.stopBits !== undefined) o.stopBits = c.stopBits;
  if (c.suffix !== undefined) o.suffix = c.suffix;
  if (c.interCharTimeoutMs !== undefined) o.interCharTimeoutMs = c.interCharTimeoutMs;
  return o;
}

/** A scanner's stable id: driver + physical location (never the enumeration order). */
export function scannerIdOf(driver: DriverName, location: string): string {
  return `${driver}:${location}`;
}

export interface Discovered {
  scannerId: string;
  device: DeviceInfo;
  /** the config entry this device answers to, if any */
  config?: ScannerConfig;
}

/**
 * Everything that should be open now. Configured entries with a path are used when the path exists;
 * configured entries with vendorId/productId pick matching detected devices; with autoDetect, every
 * device the table recognises is added.
 */
export async function discover(
  options: { scanners: ScannerConfig[]; autoDetect: boolean; roots?: SysfsRoots },
): Promise<Discovered[]> {
  const roots = options.roots ?? DEFAULT_ROOTS;
  const out = new Map<string, Discovered>();
  const byPath = new Set<string>();
  const configured = options.scanners;
  for (const c of configured) {
    if (!c.path || !existsSync(c.path)) continue;
    let real = c.path;
    try {
      real = realpathSync(c.path);
    } catch {
      continue;
    }
    byPath.add(real);
    // a by-path/by-id name or pty link is stable by itself; a /dev/ttyACMn is resolved to its USB port
    const ttyName = path.basename(real);
    const usb = /^tty(ACM|USB)\d+$/.test(ttyName) && c.path === real ? usbLocation(path.join(roots.sys, 'class/tty', ttyName, 'device')) : undefined;
    const location = usb?.location.startsWith('usb-') ? usb.location : c.path;
    const fp = matchFingerprint({ kind: c.driver === 'serial' ? 'tty' : 'hid', path: real, vendorId: usb?.vendorId, productId: usb?.productId });
    const device: DeviceInfo = {
      driver: c.driver,
      path: c.path,
      location,
      vendorId: usb?.vendorId,
      productId: usb?.productId,
      model: fp?.model,
      options: { ...(fp?.options ?? {}), ...configOptions(c) },
    };
    const id = scannerIdOf(c.driver, location);
    out.set(id, { scannerId: id, device, config: c });
  }
  const wantsUsb = options.autoDetect || configured.some((c) => !c.path && c.vendorId !== undefined);
  if (!wantsUsb) return [...out.values()];
  const candidates = [...listSerialTtys(roots), ...(await listHidDevices(roots))];
  for (const cand of candidates) {
    if (byPath.has(cand.path)) continue;
    const fp = matchFingerprint(cand);
    const conf = configured.find(
      (c) => !c.path && c.vendorId === cand.vendorId && (c.productId === undefined || c.productId === cand.productId) && (c.driver === 'serial') === (cand.kind === 'tty'),
    );
    if (!fp && !conf) continue;
    if (!conf && !options.autoDetect) continue;
    // HID keyboards of unknown vendors are ordinary keyboards: leave them alone
    if (!fp && cand.kind === 'hid' && cand.usagePage === HID_GENERIC_DESKTOP && cand.usage === HID_USAGE_KEYBOARD) continue;
    if (cand.kind === 'hid' && fp?.driver === 'hid-pos' && cand.usagePage !== HID_POS_USAGE_PAGE) continue;
    const driver = conf?.driver ?? fp!.driver;
    const device: DeviceInfo = {
      driver,
      path: cand.path,
      location: cand.location,
      vendorId: cand.vendorId,
      productId: cand.productId,
      usagePage: cand.usagePage,
      usage: cand.usage,
      model: fp?.model,
      options: { ...(fp?.options ?? {}), ...(conf ? configOptions(conf) : {}) },
    };
    const id = scannerIdOf(driver, cand.location);
    if (!out.has(id)) out.set(id, { scannerId: id, device, config: conf });
  }
  // a scanner that offers a HID POS interface next to a keyboard one is used through HID POS; its
  // keyboard interface is not refused (the operator has nothing to switch)
  const usbDevice = (location: string) => location.replace(/:\d+\.\d+$/, '');
  const posDevices = new Set([...out.values()].filter((d) => d.device.driver === 'hid-pos').map((d) => usbDevice(d.device.location)));
  for (const [id, d] of out) {
    if (d.device.driver === 'hid-keyboard' && !d.config && posDevices.has(usbDevice(d.device.location))) out.delete(id);
  }
  return [...out.values()];
}

/** A cheap fingerprint of what is plugged in, compared on every poll to decide whether to rediscover. */
export function deviceSignature(options: { scanners: ScannerConfig[]; autoDetect: boolean; roots?: SysfsRoots }): string {
  const roots = options.roots ?? DEFAULT_ROOTS;
  const parts: string[] = [];
  for (const c of options.scanners) {
    if (!c.path) continue;
    try {
      parts.push(`${c.path}=${realpathSync(c.path)}`);
    } catch {
      parts.push(`${c.path}=-`);
    }
  }
  if (options.autoDetect || options.scanners.some((c) => !c.path)) {
    for (const dir of ['class/hidraw', 'class/tty']) {
      try {
        parts.push(dir + ':' + readdirSync(path.join(roots.sys, dir)).filter((n) => !n.startsWith('tty') || /^tty(ACM|USB)\d+$/.test(n)).sort().join(','));
      } catch {
        parts.push(dir + ':-');
      }
    }
  }
  return parts.join('|');
}
