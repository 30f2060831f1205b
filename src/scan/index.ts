/**
 * Scanning, assembled: scanner manager (drivers + hotplug) → pipeline (dedupe, Verifier with the
 * scanner's STM number) → hub (live stream ring). main calls startScanning once and hands the result
 * to registerScanRoutes:
 *
 *   const scanning = await startScanning(config, { verifier, log, stateDir: config.stateDir });
 *   registerScanRoutes(app, { ...scanning.routeDeps, auth: bearerAuth });
 *   … on shutdown: await scanning.stop();
 */
import type { ApplianceConfig, ScannerConfig } from '../config/schema.ts';
import type { Logger } from '../platform/log.ts';
import type { Verifier } from '../verify/types.ts';
import { ScannerManager, type ScannerChanges, type ScannerStatus } from '../../drivers/manager.ts';
import type { ScanEvent } from '../../drivers/types.ts';
import type { SysfsRoots } from '../../drivers/registry.ts';
import { openStateStore, type StateStore } from '../store/state.ts';
import { ScanHub } from './hub.ts';
import { ScanPipeline, type PipelineOutcome, type ScannerIdentity } from './pipeline.ts';
import { createTerminalRegistry, type TerminalRegistry } from './terminals.ts';

export interface ScannerView extends Omit<ScannerStatus, 'config'> {
  /** named in the config's scanners[] (listed even when absent) */
  configured: boolean;
  name?: string;
  station?: string;
  termId?: string;
}

/** A scan from a virtual scanner (demos, `ehc-edge scanners inject`). */
export interface InjectRequest {
  text: string;
  scanner?: string;
  station?: string;
}

/** What the HIS scan routes (src/his/scans-route.ts) read from scanning. */
export interface ScanRouteSource {
  hub: ScanHub;
  scanners?: () => unknown[];
  inject?: (req: InjectRequest) => Promise<{ status: string; scanEventId?: number; resultEventId?: number }>;
  /** open streams at most (config scan.maxSubscribers); one more is answered 503 */
  maxSubscribers?: number;
  /** events queued for one subscriber at most (config scan.subscriberBuffer); a reader further behind is dropped with a gap */
  subscriberBuffer?: number;
}

export interface Scanning {
  hub: ScanHub;
  pipeline: ScanPipeline;
  manager: ScannerManager;
  terminals: TerminalRegistry;
  scanners(): ScannerView[];
  inject(req: InjectRequest): Promise<PipelineOutcome>;
  /** what registerScanRoutes needs (add `auth`) */
  routeDeps: ScanRouteSource;
  /**
   * A reloaded `scanners` / `scannerAutoDetect` (SIGHUP): opens, closes or reopens only the scanners
   * whose entry changed; the others keep running, and scans already received finish their verification.
   */
  reconfigure(scanners: readonly ScannerConfig[], autoDetect: boolean): Promise<ScannerChanges>;
  /**
   * An admin names a scanner (present, configured or expected): kept in the state store (durable write),
   * shown in the listing and in every later scan event; `station` too when given. 'exists' when it has a
   * registered name already (rename it instead).
   */
  registerScanner(scannerId: string, who: { name: string; station?: string }): Promise<'registered' | 'exists'>;
  /** A new name for a known scanner (listed now, or registered); 'unknown' otherwise. */
  renameScanner(scannerId: string, name: string): Promise<{ from: string | undefined } | 'unknown'>;
  /** resolves when the pipeline has finished with every scan received so far */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartScanningOptions {
  verifier: Verifier;
  log: Logger;
  stateDir: string;
  /** an already open state store (shared with other parts); opened from stateDir otherwise */
  store?: StateStore;
  pollMs?: number;
  retryMs?: number;
  roots?: SysfsRoots;
}

export const VIRTUAL_PREFIX = 'virtual:';

export async function startScanning(
  config: Pick<ApplianceConfig, 'site' | 'scanners' | 'scannerAutoDetect'> & { scan: Pick<ApplianceConfig['scan'], 'dedupeWindowMs' | 'streamBuffer'> & Partial<ApplianceConfig['scan']> } & { verify?: { treatmentCode?: string } },
  options: StartScanningOptions,
): Promise<Scanning> {
  const log = options.log.child({ component: 'scan' });
  const store = options.store ?? (await openStateStore(options.stateDir));
  const terminals = createTerminalRegistry(config, store);
  const hub = await ScanHub.persistent(config.scan.streamBuffer, {
    reservedUpTo: store.data.stream?.reservedUpTo ?? 0,
    reserve: async (upTo) => {
      store.data.stream = { reservedUpTo: upTo };
      await store.write();
    },
  });
  const manager = new ScannerManager({
    scanners: config.scanners,
    autoDetect: config.scannerAutoDetect,
    log,
    pollMs: options.pollMs,
    retryMs: options.retryMs,
    roots: options.roots,
  });
  const configOf = new Map<string, ScannerConfig | undefined>();
  const virtualStations = new Map<string, string | undefined>();
  const registered = (scannerId: string) => store.data.scannerNames?.[scannerId];
  const identity = async (scannerId: string): Promise<ScannerIdentity> => {
    const conf = configOf.get(scannerId);
    const reg = registered(scannerId);
    const termId = conf?.stmCode ?? (await terminals.termIdFor(scannerId));
    const station = reg?.station ?? (virtualStations.has(scannerId) ? virtualStations.get(scannerId) : conf?.station);
    return { termId, station, name: reg?.name ?? conf?.name ?? (virtualStations.has(scannerId) ? scannerId.slice(VIRTUAL_PREFIX.length) : undefined) };
  };
  const pipeline = new ScanPipeline({
    verifier: options.verifier,
    hub,
    log,
    dedupeWindowMs: config.scan.dedupeWindowMs,
    identity,
    treatmentCode: config.verify?.treatmentCode,
  });

  const inflight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => {});
    return p;
  };
  const onScan = (ev: ScanEvent) => void track(pipeline.ingest(ev)).catch((err) => log.error('scan pipeline failed', { err }));
  manager.on('scan', onScan);
  const publishState = (s: ScannerStatus, extra: Record<string, unknown> = {}) => {
    configOf.set(s.scannerId, s.config);
    void identity(s.scannerId)
      .then((who) => hub.publish('scanner', s.scannerId, who.station, { ...view(s), ...who, ...extra }))
      .catch((err) => log.error('scanner identity failed', { err }));
  };
  manager.on('attached', (s) => publishState(s));
  manager.on('detached', (s, reason) => publishState(s, { reason }));
  manager.on('refused', (s) => publishState(s));

  const view = (s: ScannerStatus): ScannerView => {
    const { config, ...rest } = s;
    return { ...rest, configured: config !== undefined };
  };
  await manager.start();
  // allocate numbers for scanners found at start, so the listing shows them
  for (const s of manager.list()) {
    configOf.set(s.scannerId, s.config);
    if (s.state !== 'refused' && s.state !== 'absent') await terminals.termIdFor(s.scannerId).catch(() => undefined);
  }

  const scanners = (): ScannerView[] => {
    const known = terminals.known();
    return manager.list().map((s) => ({
      ...view(s),
      name: registered(s.scannerId)?.name ?? s.config?.name,
      station: registered(s.scannerId)?.station ?? s.config?.station,
      termId: s.config?.stmCode ?? known[s.scannerId],
    }));
  };
  const inject = (req: InjectRequest): Promise<PipelineOutcome> => {
    const scannerId = VIRTUAL_PREFIX + (req.scanner ?? 'inject');
    virtualStations.set(scannerId, req.station);
    return track(pipeline.ingest({ scannerId, text: req.text, at: Date.now() }));
  };
  const saveName = async (scannerId: string, entry: { name: string; station?: string }) => {
    store.data.scannerNames = { ...(store.data.scannerNames ?? {}), [scannerId]: { ...entry, at: new Date().toISOString() } };
    await store.write();
  };
  const registerScanner = async (scannerId: string, who: { name: string; station?: string }) => {
    if (registered(scannerId)) return 'exists' as const;
    await saveName(scannerId, who.station !== undefined ? { name: who.name, station: who.station } : { name: who.name });
    return 'registered' as const;
  };
  const renameScanner = async (scannerId: string, name: string) => {
    const reg = registered(scannerId);
    const listed = scanners().find((s) => s.scannerId === scannerId);
    if (!reg && !listed && !virtualStations.has(scannerId)) return 'unknown' as const;
    const from = reg?.name ?? listed?.name ?? (virtualStations.has(scannerId) ? scannerId.slice(VIRTUAL_PREFIX.length) : undefined);
    await saveName(scannerId, reg?.station !== undefined ? { name, station: reg.station } : { name });
    return { from };
  };
  return {
    registerScanner,
    renameScanner,
    hub,
    pipeline,
    manager,
    terminals,
    scanners,
    inject,
    routeDeps: { hub, scanners, inject, maxSubscribers: config.scan.maxSubscribers, subscriberBuffer: config.scan.subscriberBuffer },
    async reconfigure(list, autoDetect) {
      terminals.reserve(list.map((s) => s.stmCode).filter((c): c is string => !!c));
      const changes = await manager.reconfigure(list, autoDetect);
      // names, stations and STM numbers of the scans that come next follow the new entries
      for (const s of manager.list()) configOf.set(s.scannerId, s.config);
      return changes;
    },
    async idle() {
      while (inflight.size) await Promise.allSettled([...inflight]);
    },
    async stop() {
      manager.off('scan', onScan);
      await manager.stop();
      await Promise.allSettled([...inflight]);
    },
  };
}
