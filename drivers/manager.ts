/**
 * Keeps every scanner that should be open, open: discovers devices, opens them with their driver,
 * closes the ones that went away, reopens on replug (same scannerId, derived from the port), and
 * re-emits their scans. Keyboard-mode devices are refused once per plug with the operator message.
 * A scanner named in the config is always listed: while it is not plugged in as `absent`, with the
 * time it went away (or the start, if it never came).
 */
import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import type { ScannerConfig } from '../src/config/schema.ts';
import type { Logger } from '../src/platform/log.ts';
import { DRIVERS, deviceSignature, discover, type Discovered, type SysfsRoots } from './registry.ts';
import { watchDevices, watchDirsFor, type DeviceWatcher } from './hotplug.ts';
import type { CloseReason, DeviceInfo, ScanEvent, Scanner, ScannerDriver, DriverName } from './types.ts';

export type ScannerState = 'open' | 'closed' | 'refused' | 'failed' | 'absent';

export interface ScannerStatus {
  scannerId: string;
  driver: DriverName;
  path: string;
  location: string;
  model?: string;
  vendorId?: number;
  productId?: number;
  state: ScannerState;
  message?: string;
  openedAt?: string;
  /** absent: ISO time it went away (or the manager started, when it was never seen) */
  absentSince?: string;
  /** absent: it was plugged in before (unplugged) rather than never seen since start */
  seenBefore?: boolean;
  scans: number;
  config?: ScannerConfig;
}

export interface ManagerEvents {
  scan: [ScanEvent];
  attached: [ScannerStatus];
  detached: [ScannerStatus, CloseReason];
  refused: [ScannerStatus];
}

interface Entry {
  status: ScannerStatus;
  scanner?: Scanner;
  real?: string;
  retryAt?: number;
}

export interface ManagerOptions {
  scanners: ScannerConfig[];
  autoDetect: boolean;
  log: Logger;
  pollMs?: number;
  retryMs?: number;
  roots?: SysfsRoots;
  /** override drivers (tests) */
  drivers?: Partial<Record<DriverName, ScannerDriver>>;
  /** watch for hotplug (default true); false = call reconcile() yourself */
  watch?: boolean;
}

function realOf(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** The id a configured scanner is listed under while absent (its last id when it was seen). */
function absentIdOf(c: ScannerConfig): string {
  if (c.path) return `${c.driver}:${c.path}`;
  const hex = (n: number | undefined) => (n === undefined ? '*' : n.toString(16).padStart(4, '0'));
  return `${c.driver}:usb-${hex(c.vendorId)}:${hex(c.productId)}`;
}

interface Absence {
  since: string;
  lastId?: string;
  seenBefore: boolean;
  scans: number;
}

export class ScannerManager extends EventEmitter<ManagerEvents> {
  readonly #entries = new Map<string, Entry>();
  /** configured scanners not plugged in now */
  readonly #absent = new Map<ScannerConfig, Absence>();
  readonly #opts: ManagerOptions;
  #watcher: DeviceWatcher | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ManagerOptions) {
    super();
    this.#opts = options;
  }

  async start(): Promise<void> {
    if (this.#opts.watch !== false) {
      const paths = this.#opts.scanners.map((s) => s.path).filter((p): p is string => !!p);
      const sigOpts = { scanners: this.#opts.scanners, autoDetect: this.#opts.autoDetect, roots: this.#opts.roots };
      this.#watcher = watchDevices({
        dirs: watchDirsFor(paths, this.#opts.autoDetect),
        pollMs: this.#opts.pollMs ?? 500,
        signature: () => deviceSignature(sigOpts),
        onChange: () => void this.reconcile(),
      });
    }
    await this.reconcile();
  }

  list(): ScannerStatus[] {
    const present = [...this.#entries.values()].map((e) => ({ ...e.status }));
    const absent = [...this.#absent].map(([c, a]): ScannerStatus => ({
      scannerId: a.lastId ?? absentIdOf(c),
      driver: c.driver,
      path: c.path ?? '',
      location: '',
      vendorId: c.vendorId,
      productId: c.productId,
      state: 'absent',
      absentSince: a.since,
      seenBefore: a.seenBefore,
      message: a.seenBefore ? 'unplugged' : 'not plugged in',
      scans: a.scans,
      config: c,
    }));
    return [...present, ...absent];
  }

  /** Configured scanners without a device now: listed as absent from the time they went away. */
  #noteAbsent(found: Discovered[]): void {
    const now = new Date().toISOString();
    for (const c of this.#opts.scanners) {
      const here = found.find((d) => d.config === c);
      if (here) {
        this.#absent.delete(c);
        continue;
      }
      if (this.#absent.has(c)) continue;
      const last = [...this.#entries.values()].find((e) => e.status.config === c);
      this.#absent.set(c, { since: now, lastId: last?.status.scannerId, seenBefore: this.#seen.has(c), scans: last?.status.scans ?? 0 });
    }
  }

  readonly #seen = new Set<ScannerConfig>();

  /** Bring open scanners in line with what is plugged in. Serialised; a call during a run queues one more. */
  reconcile(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#reconcileOnce().catch((err) => this.#opts.log.error('scanner discovery failed', { err }));
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #reconcileOnce(): Promise<void> {
    const found = await discover({ scanners: this.#opts.scanners, autoDetect: this.#opts.autoDetect, roots: this.#opts.roots });
    for (const d of found) if (d.config) this.#seen.add(d.config);
    this.#noteAbsent(found);
    const present = new Map(found.map((d) => [d.scannerId, d]));
    // gone, or the path now points at another device node (replugged between two looks)
    for (const [id, entry] of this.#entries) {
      const d = present.get(id);
      const moved = d && entry.scanner && entry.real !== undefined && realOf(d.device.path) !== entry.real;
      if (!d || moved) {
        if (entry.scanner) await this.#closeEntry(entry, 'unplugged');
        if (!d) this.#entries.delete(id);
      }
    }
    const now = Date.now();
    for (const d of found) {
      const entry = this.#entries.get(d.scannerId);
      if (entry?.scanner) continue;
      if (entry?.status.state === 'refused') continue; // refused until unplugged
      if (entry?.retryAt && entry.retryAt > now) continue;
      await this.#open(d, entry);
    }
  }

  async #open(d: Discovered, previous: Entry | undefined): Promise<void> {
    const status: ScannerStatus = {
      scannerId: d.scannerId,
      driver: d.device.driver,
      path: d.device.path,
      location: d.device.location,
      model: d.device.model,
      vendorId: d.device.vendorId,
      productId: d.device.productId,
      state: 'closed',
      scans: previous?.status.scans ?? 0,
      config: d.config,
    };
    const entry: Entry = { status };
    this.#entries.set(d.scannerId, entry);
    const driver = this.#opts.drivers?.[d.device.driver] ?? DRIVERS[d.device.driver];
    const real = realOf(d.device.path);
    let scanner: Scanner;
    try {
      scanner = await driver.open(d.device, d.scannerId);
    } catch (err) {
      const message = (err as Error).message;
      if (d.device.driver === 'hid-keyboard') {
        status.state = 'refused';
        status.message = message;
        this.#opts.log.warn('scanner refused', { scannerId: d.scannerId, reason: message });
        this.emit('refused', { ...status });
      } else {
        status.state = 'failed';
        status.message = message;
        entry.retryAt = Date.now() + (this.#opts.retryMs ?? 1000);
        if (previous?.status.message !== message) this.#opts.log.warn('scanner open failed, will retry', { scannerId: d.scannerId, reason: message });
        this.#scheduleRetry();
      }
      return;
    }
    if (this.#stopped || this.#entries.get(d.scannerId) !== entry) {
      await scanner.close();
      return;
    }
    entry.scanner = scanner;
    entry.real = real;
    status.state = 'open';
    status.openedAt = new Date().toISOString();
    status.message = undefined;
    scanner.on('scan', (ev) => {
      status.scans++;
      this.emit('scan', ev);
    });
    scanner.on('error', (err) => this.#opts.log.warn('scanner error', { scannerId: d.scannerId, err }));
    scanner.on('close', (reason) => {
      if (entry.scanner !== scanner) return;
      this.#detach(entry, reason);
      // the device may still be there (a transient error): look again shortly
      if (!this.#stopped && reason !== 'closed') {
        entry.retryAt = Date.now() + (this.#opts.retryMs ?? 1000);
        this.#scheduleRetry();
        void this.reconcile();
      }
    });
    this.#opts.log.info('scanner attached', { scannerId: d.scannerId, path: d.device.path, driver: d.device.driver, model: d.device.model });
    this.emit('attached', { ...status });
  }

  #detach(entry: Entry, reason: CloseReason): void {
    const scanner = entry.scanner;
    if (!scanner) return;
    entry.scanner = undefined;
    entry.real = undefined;
    scanner.removeAllListeners();
    entry.status.state = 'closed';
    this.#opts.log.info('scanner detached', { scannerId: entry.status.scannerId, reason });
    this.emit('detached', { ...entry.status }, reason);
  }

  async #closeEntry(entry: Entry, reason: CloseReason): Promise<void> {
    const scanner = entry.scanner;
    if (!scanner) return;
    this.#detach(entry, reason);
    await scanner.close();
  }

  #scheduleRetry(): void {
    if (this.#retry || this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.reconcile();
    }, this.#opts.retryMs ?? 1000);
    this.#retry.unref();
  }

  /** Close every scanner and stop watching. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#retry) clearTimeout(this.#retry);
    await this.#running;
    for (const entry of this.#entries.values()) await this.#closeEntry(entry, 'closed');
    this.#entries.clear();
    this.#absent.clear();
  }
}

export type { DeviceInfo };
