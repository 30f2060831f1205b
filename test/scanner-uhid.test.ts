/**
 * HID scanners on virtual kernel devices (/dev/uhid): a HID POS scanner is detected by its usage page,
 * opened through node-hid, a multi-report scan is reassembled, and removal closes it; a keyboard-mode
 * scanner is refused with the operator message. Skips (saying why) where /dev/uhid is absent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, accessSync, constants } from 'node:fs';
import { ScannerManager, type ScannerStatus } from '../drivers/manager.ts';
import type { ScanEvent } from '../drivers/types.ts';
import { memoryLogger } from '../src/platform/log.ts';
import { needs } from './helpers/skip.ts';
import { HID_POS_DESCRIPTOR, KEYBOARD_DESCRIPTOR, UhidDevice } from './helpers/uhid.ts';

function whyNot(): string | undefined {
  if (!existsSync('/dev/uhid')) return '/dev/uhid does not exist on this machine (uhid module not loaded or not exposed to this container)';
  try {
    accessSync('/dev/uhid', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/uhid is not readable and writable by this user';
  }
  if (!existsSync('/sys/class/hidraw')) return '/sys/class/hidraw is missing (no hidraw support): node-hid cannot see virtual devices';
  return undefined;
}

async function until(what: string, ok: () => boolean, limitMs = 10000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function report(data: string, more: boolean): Buffer {
  const r = Buffer.alloc(64);
  r[0] = 0x02;
  r[1] = data.length;
  r.write(']Q1', 2, 'latin1');
  r.write(data, 5, 'latin1');
  r[63] = more ? 1 : 0;
  return r;
}

const uhid = needs(whyNot() && `${whyNot()}; HID decoding is covered by recorded reports in scanner-decode.test.ts`);
uhid('virtual HID POS scanner: detected, multi-report scan reassembled, removal closes it; keyboard mode refused', async () => {
  const log = memoryLogger();
  const m = new ScannerManager({ scanners: [], autoDetect: true, log, pollMs: 200, retryMs: 200 });
  const scans: ScanEvent[] = [];
  const attached: ScannerStatus[] = [];
  const refused: ScannerStatus[] = [];
  let detached = 0;
  m.on('scan', (s) => scans.push(s));
  m.on('attached', (s) => attached.push(s));
  m.on('refused', (s) => refused.push(s));
  m.on('detached', () => detached++);
  await m.start();
  const pos = new UhidDevice({ name: 'Honeywell virtual HID POS', vendorId: 0x0c2e, productId: 0x0b87, descriptor: HID_POS_DESCRIPTOR });
  const kbd = new UhidDevice({ name: 'Honeywell virtual keyboard', vendorId: 0x0c2e, productId: 0x0901, descriptor: KEYBOARD_DESCRIPTOR });
  try {
    await until('HID POS attached', () => attached.some((s) => s.driver === 'hid-pos'));
    await until('keyboard refused', () => refused.length >= 1);
    assert.match(refused[0]!.message ?? '', /keyboard \(wedge\) mode/);
    const text = 'Q'.repeat(56) + 'END';
    pos.input(report(text.slice(0, 56), true));
    pos.input(report(text.slice(56), false));
    await until('scan', () => scans.length === 1);
    assert.is(scans[0]!.text, text);
    assert.is(scans[0]!.symbology, ']Q1');
    pos.destroy();
    await until('detached', () => detached >= 1);
  } finally {
    pos.destroy();
    kbd.destroy();
    await m.stop();
  }
});

test.run();
