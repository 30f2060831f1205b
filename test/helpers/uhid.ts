/**
 * Virtual HID devices through /dev/uhid (Linux UHID, include/uapi/linux/uhid.h): the kernel creates a
 * real hidraw node (and, for a keyboard descriptor, an input device) that hidapi/node-hid enumerate.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const UHID_DESTROY = 1;
const UHID_CREATE2 = 11;
const UHID_INPUT2 = 12;
const BUS_USB = 0x03;
/** sizeof(struct uhid_event): __u32 type + the largest request (uhid_create2_req, 4376 bytes) */
const EVENT_SIZE = 4 + 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + 4096;

/** HID POS: usage page 0x8C, Bar Code Scanner, report ID 2, 63 data bytes (64-byte reports). */
export const HID_POS_DESCRIPTOR = Buffer.from([
  0x05, 0x8c, // Usage Page (Bar Code Scanner)
  0x09, 0x02, // Usage (Bar Code Scanner)
  0xa1, 0x01, // Collection (Application)
  0x85, 0x02, //   Report ID 2
  0x15, 0x00, //   Logical Minimum 0
  0x26, 0xff, 0x00, // Logical Maximum 255
  0x75, 0x08, //   Report Size 8
  0x95, 0x3f, //   Report Count 63
  0x09, 0x12, //   Usage (Scanned Data Report)
  0x81, 0x02, //   Input (Data, Var, Abs)
  0xc0, // End Collection
]);

/** Boot keyboard. */
export const KEYBOARD_DESCRIPTOR = Buffer.from([
  0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01,
  0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65,
  0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0,
]);

export class UhidDevice {
  readonly #fd: number;
  #destroyed = false;

  constructor(options: { name: string; vendorId: number; productId: number; descriptor: Buffer }) {
    this.#fd = openSync('/dev/uhid', 'r+');
    const ev = Buffer.alloc(EVENT_SIZE);
    ev.writeUInt32LE(UHID_CREATE2, 0);
    let o = 4;
    ev.write(options.name.slice(0, 127), o, 'latin1');
    o += 128;
    ev.write('ehc-edge-test/uhid', o, 'latin1');
    o += 64;
    o += 64; // uniq
    ev.writeUInt16LE(options.descriptor.length, o);
    o += 2;
    ev.writeUInt16LE(BUS_USB, o);
    o += 2;
    ev.writeUInt32LE(options.vendorId, o);
    o += 4;
    ev.writeUInt32LE(options.productId, o);
    o += 4;
    o += 4; // version
    o += 4; // country
    options.descriptor.copy(ev, o);
    writeSync(this.#fd, ev);
  }

  /** Send one input report (report ID first for numbered reports). */
  input(report: Buffer): void {
    const ev = Buffer.alloc(EVENT_SIZE);
    ev.writeUInt32LE(UHID_INPUT2, 0);
    ev.writeUInt16LE(report.length, 4);
    report.copy(ev, 6);
    writeSync(this.#fd, ev);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const ev = Buffer.alloc(EVENT_SIZE);
    ev.writeUInt32LE(UHID_DESTROY, 0);
    try {
      writeSync(this.#fd, ev);
    } finally {
      closeSync(this.#fd);
    }
  }
}
