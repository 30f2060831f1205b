/**
 * Discovery on a recorded sysfs layout: USB serial scanners are found by VID (device table), their
 * scannerId comes from the USB port (not the ttyACM number), unknown adapters are left alone, and a
 * configured path wins over autodetection.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { discover, deviceSignature, usbLocation } from '../drivers/registry.ts';

const root = mkdtempSync(path.join(tmpdir(), 'ehc-sysfs-'));

/** /sys/devices/pci0000:00/0000:00:14.0/usb1/<port>/<port>:1.0/tty/<tty>, like the kernel lays it out */
function fakeUsbTty(sys: string, tty: string, port: string, vid: number, pid: number, usbSerial = false): void {
  const usbDev = path.join(sys, 'devices/pci0000:00/0000:00:14.0/usb1', port);
  const iface = path.join(usbDev, `${port}:1.0`);
  const devDir = usbSerial ? path.join(iface, tty) : iface;
  mkdirSync(devDir, { recursive: true });
  writeFileSync(path.join(usbDev, 'idVendor'), vid.toString(16).padStart(4, '0') + '\n');
  writeFileSync(path.join(usbDev, 'idProduct'), pid.toString(16).padStart(4, '0') + '\n');
  const classDir = path.join(sys, 'class/tty', tty);
  mkdirSync(classDir, { recursive: true });
  symlinkSync(devDir, path.join(classDir, 'device'));
}

function layout(name: string) {
  const sys = path.join(root, name, 'sys');
  const dev = path.join(root, name, 'dev');
  mkdirSync(path.join(sys, 'class/tty/tty0'), { recursive: true }); // a console tty: ignored
  mkdirSync(dev, { recursive: true });
  return { sys, dev };
}

test('USB port devpath gives the location; idVendor/idProduct are read from the USB device', () => {
  const roots = layout('loc');
  fakeUsbTty(roots.sys, 'ttyACM0', '1-1.2', 0x05e0, 0x0600);
  assert.equal(usbLocation(path.join(roots.sys, 'class/tty/ttyACM0/device')), { location: 'usb-1-1.2:1.0', vendorId: 0x05e0, productId: 0x0600 });
});

test('autodetect finds CDC scanners by vendor and ignores unknown USB-serial adapters', async () => {
  const roots = layout('auto');
  fakeUsbTty(roots.sys, 'ttyACM0', '1-1', 0x05e0, 0x0600); // Zebra CDC
  fakeUsbTty(roots.sys, 'ttyACM1', '1-2', 0x0c2e, 0x0b6a); // Honeywell USB serial
  fakeUsbTty(roots.sys, 'ttyUSB0', '1-3', 0x0403, 0x6001, true); // FTDI adapter: could be anything
  const found = await discover({ scanners: [], autoDetect: true, roots });
  const ids = found.map((d) => d.scannerId).sort();
  assert.equal(ids, ['serial:usb-1-1:1.0', 'serial:usb-1-2:1.0']);
  const zebra = found.find((d) => d.scannerId === 'serial:usb-1-1:1.0')!;
  assert.is(zebra.device.path, path.join(roots.dev, 'ttyACM0'));
  assert.match(zebra.device.model ?? '', /Zebra/);
  assert.is(zebra.device.options.suffix, 'CR');
  assert.equal(await discover({ scanners: [], autoDetect: false, roots }), [], 'autodetect off: nothing');
});

test('the same scanner re-enumerated as another ttyACM number in the same port keeps its id', async () => {
  const a = layout('enum-a');
  fakeUsbTty(a.sys, 'ttyACM0', '2-4', 0x1eab, 0x1a06);
  const b = layout('enum-b');
  fakeUsbTty(b.sys, 'ttyACM3', '2-4', 0x1eab, 0x1a06);
  const [da] = await discover({ scanners: [], autoDetect: true, roots: a });
  const [db] = await discover({ scanners: [], autoDetect: true, roots: b });
  assert.is(da!.scannerId, db!.scannerId);
  assert.is.not(da!.device.path, db!.device.path);
  assert.is.not(deviceSignature({ scanners: [], autoDetect: true, roots: a }), deviceSignature({ scanners: [], autoDetect: true, roots: b }));
});

test('a config entry by vendor gives station/name and its serial options to the detected device', async () => {
  const roots = layout('conf');
  fakeUsbTty(roots.sys, 'ttyACM0', '1-5', 0x05f9, 0x4204);
  const found = await discover({
    scanners: [{ driver: 'serial', vendorId: 0x05f9, station: 'reg-7', name: 'Datalogic', baudRate: 115200, suffix: 'CRLF' }],
    autoDetect: false,
    roots,
  });
  assert.is(found.length, 1);
  assert.is(found[0]!.config?.station, 'reg-7');
  assert.is(found[0]!.device.options.baudRate, 115200);
  assert.is(found[0]!.device.options.suffix, 'CRLF');
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
