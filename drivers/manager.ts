/**
 * Keeps every scanner that should be open, open: discovers devices, opens them with their driver,
 * closes the ones that went away, reopens on replug (same scannerId, derived from the port), and
 * re-emits their scans. Keyboard-mode devices are refused once per plug with the operator message.
 * A scanner named in the config is always listed: while it is not plugged in as `absent`, with the
 * time it went away (or the start, if it never came).
 */
import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
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

/** What a reconfiguration did, by configured scanner (`driver:path` or `driver:usb-vvvv:pppp`). */
export interface ScannerChanges {
  /** newly configured: opened when plugged in */
  added: string[];
  /** no longer configured: closed (an auto-detected device at the same port is taken up as such) */
  removed: string[];
  /** device settings changed (framing, baud rate, driver…): closed and opened again */
  reopened: string[];
  /** only its name, station or STM number changed: taken over by the open scanner, not reopened */
  updated: string[];
  /** scannerAutoDetect changed (auto-detected devices opened or closed accordingly) */
  autoDetect?: boolean;
}

/** A configured scanner's identity across configs: the same entry if driver and path (or USB IDs) are. */
const configKey = (c: ScannerConfig): string => absentIdOf(c);
/** fields that only label a scanner: a change of these does not reopen the device */
const LABELS = ['name', 'station', 'stmCode'] as const;
const deviceSettings = (c: ScannerConfig) => {
  const d: Record<string, unknown> = { ...c };
  for (const k of LABELS) delete d[k];
  return d;
};

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
  /** a reconfiguration waiting for the next reconcile pass (serialised with discovery) */
  #pending: { scanners: ScannerConfig[]; autoDetect: boolean; done: (c: ScannerChanges) => void } | undefined;

  constructor(options: ManagerOptions) {
    super();
    this.#opts = options;
  }

  async start(): Promise<void> {
    this.#watch();
    await this.reconcile();
  }

  #watch(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#opts.watch !== false && !this.#stopped) {
      const paths = this.#opts.scanners.map((s) => s.path).filter((p): p is string => !!p);
      const sigOpts = { scanners: this.#opts.scanners, autoDetect: this.#opts.autoDetect, roots: this.#opts.roots };
      this.#watcher = watchDevices({
        dirs: watchDirsFor(paths, this.#opts.autoDetect),
        pollMs: this.#opts.pollMs ?? 500,
        signature: () => deviceSignature(sigOpts),
        onChange: () => void this.reconcile(),
      });
    }
  }

  /**
   * Take a new scanners[] / scannerAutoDetect (config reload): only the scanners whose entry was added,
   * removed or changed are opened, closed or reopened; every other open scanner is left alone (its
   * port stays open, a scan it is receiving is not cut). Runs in the serialised reconcile pass.
   */
  reconfigure(scanners: readonly ScannerConfig[], autoDetect: boolean = this.#opts.autoDetect): Promise<ScannerChanges> {
    if (this.#stopped) return Promise.resolve({ added: [], removed: [], reopened: [], updated: [] });
    return new Promise<ScannerChanges>((resolve) => {
      const earlier = this.#pending;
      // a newer reconfiguration replaces one not applied yet; both callers learn the outcome
      this.#pending = { scanners: [...scanners], autoDetect, done: (c) => (earlier?.done(c), resolve(c)) };
      void this.reconcile();
    });
  }

  async #applyPending(): Promise<void> {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    const old = this.#opts.scanners;
    const oldByKey = new Map(old.map((c) => [configKey(c), c]));
    const changes: ScannerChanges = { added: [], removed: [], reopened: [], updated: [] };
    const retire = new Set<ScannerConfig>();
    const relabel = new Map<ScannerConfig, ScannerConfig>();
    // keep the very object of an unchanged entry: entries, absences and `seen` are keyed by it
    const next = p.scanners.map((c) => {
      const key = configKey(c);
      const before = oldByKey.get(key);
      if (!before) {
        changes.added.push(key);
        return c;
      }
      oldByKey.delete(key);
      if (isDeepStrictEqual(before, c)) return before;
      if (isDeepStrictEqual(deviceSettings(before), deviceSettings(c))) {
        changes.updated.push(key);
        relabel.set(before, c);
      } else {
        changes.reopened.push(key);
        retire.add(before);
      }
      return c;
    });
    for (const [key, c] of oldByKey) {
      changes.removed.push(key);
      retire.add(c);
    }
    if (p.autoDetect !== this.#opts.autoDetect) changes.autoDetect = p.autoDetect;
    for (const [id, entry] of this.#entries) {
      const c = entry.status.config;
      if (!c) continue;
      const label = relabel.get(c);
      if (label) {
        entry.status.config = label;
        continue;
      }
      if (!retire.has(c)) continue;
      // closed and forgotten: the discovery below opens it again under its new entry (or as auto-detected)
      this.#entries.delete(id);
      await this.#closeEntry(entry, 'closed').catch((err) => this.#opts.log.warn('scanner close failed', { scannerId: id, err }));
    }
    for (const c of [...this.#absent.keys()]) {
      const label = relabel.get(c);
      if (label) {
        this.#absent.set(label, this.#absent.get(c)!);
        this.#absent.delete(c);
      } else if (retire.has(c)) this.#absent.delete(c);
    }
    for (const [before, after] of relabel) if (this.#seen.delete(before)) this.#seen.add(after);
    this.#opts.scanners = next;
    this.#opts.autoDetect = p.autoDetect;
    this.#watch(); // the watched paths follow the list
    const any = changes.added.length + changes.removed.length + changes.reopened.length + changes.updated.length > 0 || changes.autoDetect !== undefined;
    if (any) this.#opts.log.info('scanners reconfigured', { ...changes });
    this.#lastChanges = { changes, done: p.done };
  }

  #lastChanges: { changes: ScannerChanges; done: (c: ScannerChanges) => void } | undefined;

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
        await this.#applyPending().catch((err) => this.#opts.log.error('scanner reconfiguration failed', { err }));
        await this.#reconcileOnce().catch((err) => this.#opts.log.error('scanner discovery failed', { err }));
        // a reconfiguration is answered once its scanners were opened or closed
        const last = this.#lastChanges;
        this.#lastChanges = undefined;
        last?.done(last.changes);
      } while ((this.#again || this.#pending) && !this.#stopped);
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
      // after a reconfiguration the device answers to another config entry (or to none: auto-detected)
      const reassigned = d && entry.scanner && d.config !== entry.status.config;
      if (!d || moved || reassigned) {
        if (entry.scanner) await this.#closeEntry(entry, moved || !d ? 'unplugged' : 'closed');
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
    this.#pending?.done({ added: [], removed: [], reopened: [], updated: [] });
    this.#pending = undefined;
    for (const entry of this.#entries.values()) await this.#closeEntry(entry, 'closed');
    this.#entries.clear();
    this.#absent.clear();
  }
}

export type { DeviceInfo };
