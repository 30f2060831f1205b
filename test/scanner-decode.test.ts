/**
 * Decoding without devices: AIM prefixes, serial framing, HID POS reports reassembled from recorded
 * byte streams, keyboard-wedge reports, device-table matching, the keyboard-mode refusal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stripAim } from '../drivers/types.ts';
import { createFramer, frameToText } from '../drivers/serial.ts';
import { decodeHidPosReport, HidPosAssembler } from '../drivers/hid-pos.ts';
import { KeyboardReportDecoder, keyboardRefusal, hidKeyboardDriver } from '../drivers/hid-keyboard.ts';
import { matchFingerprint } from '../drivers/registry.ts';
import { EhcError } from '../src/errors.ts';

const CODE = 'C50E5BA1C0E67B3D0C1F4D2A9E8B7F6A5C4D3E2F1A0B9C8D7E6F5A4B3C2D1FA08:0:7F4D9C5D163963FFF9BE8DEB29037A75::35020001001';

test('AIM identifier is stripped and recorded; text without one is left alone', () => {
  assert.equal(stripAim(']Q1' + CODE), { text: CODE, symbology: ']Q1' });
  assert.equal(stripAim(']C1(01)123'), { text: '(01)123', symbology: ']C1' });
  assert.equal(stripAim('ABC]Q1'), { text: 'ABC]Q1' });
  assert.equal(stripAim(']'), { text: ']' });
});

function frames(options: Parameters<typeof createFramer>[0], chunks: string[]): Promise<string[]> {
  return new Promise((resolve) => {
    const out: string[] = [];
    const f = createFramer(options);
    f.on('data', (b: Buffer) => out.push(frameToText(b)));
    for (const c of chunks) f.write(Buffer.from(c, 'latin1'));
    setTimeout(() => {
      f.end();
      resolve(out);
    }, 120);
  });
}

test('serial framing: CR, LF and CRLF suffixes across chunk boundaries', async () => {
  assert.equal(await frames({ suffix: 'CR' }, ['abc', 'd\rEF', 'G\r']), ['abcd', 'EFG']);
  assert.equal(await frames({ suffix: 'LF' }, ['one\ntw', 'o\n']), ['one', 'two']);
  assert.equal(await frames({ suffix: 'CRLF' }, ['one\r', '\ntwo\r\n']), ['one', 'two']);
  // a scanner sending CRLF to a port configured for CR: the LF does not leak into the next scan
  assert.equal((await frames({ suffix: 'CR' }, ['one\r\n', 'two\r\n'])).filter(Boolean), ['one', 'two']);
});

test('serial framing: suffix none ends a scan after the inter-character timeout', async () => {
  const out = await new Promise<string[]>((resolve) => {
    const got: string[] = [];
    const f = createFramer({ suffix: 'none', interCharTimeoutMs: 20 });
    f.on('data', (b: Buffer) => got.push(frameToText(b)));
    f.write(Buffer.from('first'));
    setTimeout(() => f.write(Buffer.from('second')), 80);
    setTimeout(() => resolve(got), 200);
  });
  assert.equal(out, ['first', 'second']);
});

/** A 64-byte Honeywell-layout report. */
function report(data: string, opts: { aim?: string; more?: boolean; extra?: boolean } = {}): Buffer {
  const r = Buffer.alloc(64);
  r[0] = 0x02;
  const payload = Buffer.from(data, 'latin1');
  r[1] = payload.length;
  let at = 2;
  if (opts.extra) r[at++] = 0x00;
  Buffer.from(opts.aim ?? ']Q1', 'latin1').copy(r, at);
  payload.copy(r, at + 3);
  r[61] = 0x51;
  r[63] = opts.more ? 1 : 0;
  return r;
}

test('HID POS: one report decodes to AIM id and data', () => {
  const frag = decodeHidPosReport(report('HELLO'));
  assert.ok(frag);
  assert.is(frag.symbology, ']Q1');
  assert.is(frag.data.toString(), 'HELLO');
  assert.is(frag.more, false);
  assert.is(decodeHidPosReport(Buffer.from([0x01, 0, 0, 0, 0, 0, 0, 0])), undefined, 'not a scanned-data report');
});

test('HID POS: a 114-char health code is reassembled across three reports (continuation flag)', () => {
  const asm = new HidPosAssembler();
  const parts = [CODE.slice(0, 56), CODE.slice(56, 112), CODE.slice(112)];
  assert.is(asm.push(report(parts[0]!, { more: true })), undefined);
  assert.is(asm.push(report(parts[1]!, { more: true })), undefined);
  assert.equal(asm.push(report(parts[2]!)), { text: CODE, symbology: ']Q1' });
  // and the assembler is clean for the next scan
  assert.equal(asm.push(report('NEXT', { aim: ']C1' })), { text: 'NEXT', symbology: ']C1' });
});

test('HID POS: a device with an extra byte before the AIM id is read by finding the ]', () => {
  const asm = new HidPosAssembler();
  assert.equal(asm.push(report('ABC123', { extra: true })), { text: 'ABC123', symbology: ']Q1' });
});

test('HID POS: recorded REVINF-style stream (count 56 = full report) keeps every byte', () => {
  const text = 'X'.repeat(56) + 'tail';
  const asm = new HidPosAssembler();
  assert.is(asm.push(report(text.slice(0, 56), { aim: ']X0', more: true })), undefined);
  assert.equal(asm.push(report(text.slice(56), { aim: ']X0' })), { text, symbology: ']X0' });
});

/** Key down then all-up reports, as a wedge scanner types. */
function typed(s: string, startAt = 0, gap = 2): Array<[number[], number]> {
  const out: Array<[number[], number]> = [];
  let t = startAt;
  const code = (ch: string): [number, number] => {
    if (/[a-z]/.test(ch)) return [0, 0x04 + ch.charCodeAt(0) - 97];
    if (/[A-Z]/.test(ch)) return [0x02, 0x04 + ch.charCodeAt(0) - 65];
    if (/[1-9]/.test(ch)) return [0, 0x1e + Number(ch) - 1];
    if (ch === '0') return [0, 0x27];
    if (ch === ':') return [0x20, 0x33];
    if (ch === '\n') return [0, 0x28];
    throw new Error('no key for ' + ch);
  };
  for (const ch of s) {
    const [mod, key] = code(ch);
    out.push([[mod, 0, key, 0, 0, 0, 0, 0], (t += gap)]);
    out.push([[0, 0, 0, 0, 0, 0, 0, 0], (t += gap)]);
  }
  return out;
}

test('keyboard wedge: reports decode with shift and US layout, Enter ends the scan', () => {
  const dec = new KeyboardReportDecoder();
  const scans = typed('Ab09:Zz\n').flatMap(([r, at]) => dec.push(r, at));
  assert.equal(scans, [{ text: 'Ab09:Zz', endedBy: 'enter' }]);
});

test('keyboard wedge: a held key repeated in the next report is typed once; a double letter twice', () => {
  const dec = new KeyboardReportDecoder();
  const reports: Array<[number[], number]> = [
    [[0, 0, 0x04, 0, 0, 0, 0, 0], 1],
    [[0, 0, 0x04, 0, 0, 0, 0, 0], 2], // still held
    [[0, 0, 0, 0, 0, 0, 0, 0], 3],
    [[0, 0, 0x04, 0, 0, 0, 0, 0], 4], // pressed again
    [[0, 0, 0x04, 0x05, 0, 0, 0, 0], 5], // rollover: b added
    [[0, 0, 0x28, 0, 0, 0, 0, 0], 6],
  ];
  const scans = reports.flatMap(([r, at]) => dec.push(r, at));
  assert.equal(scans, [{ text: 'aab', endedBy: 'enter' }]);
});

test('keyboard wedge: without Enter the scan ends after the end-of-scan timeout', () => {
  const dec = new KeyboardReportDecoder({ endOfScanTimeoutMs: 200 });
  const first = typed('abc', 0).flatMap(([r, at]) => dec.push(r, at));
  assert.equal(first, []);
  assert.is(dec.flushIfIdle(100), undefined);
  const second = typed('xyz', 500).flatMap(([r, at]) => dec.push(r, at));
  assert.equal(second, [{ text: 'abc', endedBy: 'timeout' }]);
  assert.equal(dec.flushIfIdle(2000), { text: 'xyz', endedBy: 'timeout' });
});

test('device table: HID POS by usage page, keyboard personality by VID/PID, CDC by VID and tty name', () => {
  assert.is(matchFingerprint({ kind: 'hid', path: '/dev/hidraw0', vendorId: 0x05e0, productId: 0x1300, usagePage: 0x8c, usage: 2 })?.driver, 'hid-pos');
  assert.is(matchFingerprint({ kind: 'hid', path: '/dev/hidraw1', vendorId: 0x05e0, productId: 0x1200, usagePage: 1, usage: 6 })?.driver, 'hid-keyboard');
  assert.is(matchFingerprint({ kind: 'tty', path: '/dev/ttyACM0', vendorId: 0x05e0, productId: 0x0600 })?.driver, 'serial');
  assert.is(matchFingerprint({ kind: 'hid', path: '/dev/hidraw2', vendorId: 0x1234, productId: 1, usagePage: 0x8c, usage: 2 })?.model, 'generic HID POS scanner (usage page 0x8C)');
  // an ordinary keyboard and a random USB-serial adapter are not scanners
  assert.is(matchFingerprint({ kind: 'hid', path: '/dev/hidraw3', vendorId: 0x046d, productId: 0xc31c, usagePage: 1, usage: 6 }), undefined);
  assert.is(matchFingerprint({ kind: 'tty', path: '/dev/ttyUSB0', vendorId: 0x0403, productId: 0x6001 }), undefined);
});

test('keyboard-mode scanners are refused with how to switch them', async () => {
  const device = { driver: 'hid-keyboard' as const, path: '/dev/hidraw4', location: 'usb-1-2:1.0', vendorId: 0x0c2e, productId: 0x0901, options: {} };
  const msg = keyboardRefusal(device);
  assert.match(msg, /keyboard \(wedge\) mode/);
  assert.match(msg, /HID POS/);
  assert.match(msg, /0x0c2e:0x0901/);
  try {
    await hidKeyboardDriver.open(device, 'hid-keyboard:usb-1-2:1.0');
    assert.unreachable('opened a keyboard-mode scanner');
  } catch (err) {
    assert.instance(err, EhcError);
    assert.is((err as EhcError).code, '9005');
  }
});

test.run();
