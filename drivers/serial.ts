/**
 * Serial scanners: RS-232 (behind a USB-serial adapter or on-board) and USB CDC-ACM, via serialport.
 * A scan ends on the configured suffix (CR, LF, CRLF) or, with suffix 'none', after an inter-character
 * timeout; framing is done by serialport's own parsers (DelimiterParser / InterByteTimeoutParser).
 * A leading AIM identifier (`]Q1` …) is stripped and kept as `symbology`.
 * Unplug: serialport closes the stream with a `disconnected` error (USB) or a read/poll error (pty
 * hang-up); both become `close('unplugged')`. A partial scan pending at unplug is discarded, never
 * glued to the next scan (every open gets a fresh parser).
 *
 * serialport does not always see a hang-up: after the tty is hung up, read() returns 0 bytes and
 * bindings-cpp's read loop retries forever (bindings-cpp #162, open): no close event, CPU burnt, memory
 * growing. Every hang-up we care about removes the device node (USB unplug) or the pty link (socat
 * gone), so the scanner also watches its path and treats "gone or now another node" as an unplug,
 * closing the port, which ends that loop.
 */
import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import { SerialPort, DelimiterParser, InterByteTimeoutParser } from 'serialport';
import type { Transform } from 'node:stream';
import { ScannerError } from '../src/errors.ts';
import { SERIAL_DEFAULTS } from './devices.ts';
import { stripAim, type CloseReason, type DeviceInfo, type Scanner, type ScannerDriver, type ScannerEvents } from './types.ts';

export const PATH_CHECK_MS = 250;

function realOf(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

const SUFFIX_BYTES = { CR: '\r', LF: '\n', CRLF: '\r\n' } as const;

/** Bytes → scan texts, for one open of one port. */
export function createFramer(options: DeviceInfo['options']): Transform {
  const suffix = options.suffix ?? SERIAL_DEFAULTS.suffix;
  if (suffix === 'none') {
    return new InterByteTimeoutParser({ interval: options.interCharTimeoutMs ?? SERIAL_DEFAULTS.interCharTimeoutMs, maxBufferSize: 8192 });
  }
  return new DelimiterParser({ delimiter: SUFFIX_BYTES[suffix], includeDelimiter: false });
}

/** One frame → text, tolerating a CR/LF the scanner sends beyond the configured suffix. */
export function frameToText(frame: Buffer): string {
  return frame.toString('utf8').replace(/^[\r\n]+|[\r\n]+$/g, '');
}

class SerialScanner extends EventEmitter<ScannerEvents> implements Scanner {
  #closing: Promise<void> | undefined;
  #closed = false;
  readonly #port: SerialPort;
  readonly #framer: Transform;
  readonly #pathCheck: NodeJS.Timeout;

  constructor(
    readonly id: string,
    readonly device: DeviceInfo,
    port: SerialPort,
  ) {
    super();
    this.#port = port;
    this.#framer = createFramer(device.options);
    this.#framer.on('data', (frame: Buffer) => {
      const text = frameToText(frame);
      if (!text) return;
      const { text: body, symbology } = stripAim(text);
      this.emit('scan', { scannerId: this.id, text: body, symbology, at: Date.now() });
    });
    // end: false — when the port ends, the framer must not flush a half scan as if it were whole
    port.pipe(this.#framer, { end: false });
    port.on('error', (err) => this.#error(err));
    port.on('close', (err?: Error & { disconnected?: boolean }) => {
      this.#finish(err?.disconnected ? 'unplugged' : err ? 'error' : 'closed', err);
    });
    const real = realOf(device.path);
    this.#pathCheck = setInterval(() => {
      if (realOf(device.path) === real) return;
      this.#finish('unplugged', new Error(`${device.path} is gone`));
      if (this.#port.isOpen) this.#port.close(() => {});
    }, PATH_CHECK_MS);
    this.#pathCheck.unref();
  }

  get isOpen(): boolean {
    return !this.#closed && this.#port.isOpen;
  }

  #error(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #finish(reason: CloseReason, err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pathCheck);
    this.#port.unpipe(this.#framer);
    this.#framer.removeAllListeners('data');
    this.#framer.destroy();
    this.#port.removeAllListeners();
    this.#port.on('error', () => {}); // late errors from a dying port are not ours to throw
    this.emit('close', reason, err);
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (!this.#port.isOpen) {
        this.#finish('closed');
        return resolve();
      }
      this.#port.close(() => {
        this.#finish('closed');
        resolve();
      });
    });
    return this.#closing;
  }
}

export const serialDriver: ScannerDriver = {
  name: 'serial',
  async open(device: DeviceInfo, scannerId: string): Promise<Scanner> {
    const o = { ...SERIAL_DEFAULTS, ...device.options };
    const port = new SerialPort({
      path: device.path,
      baudRate: o.baudRate,
      dataBits: o.dataBits,
      parity: o.parity,
      stopBits: o.stopBits,
      autoOpen: false,
    });
    await new Promise<void>((resolve, reject) =>
      port.open((err) => (err ? reject(new ScannerError(`cannot open serial scanner ${device.path}: ${err.message}`, { cause: err })) : resolve())),
    );
    return new SerialScanner(scannerId, device, port);
  },
};
