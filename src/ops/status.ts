/**
 * The appliance's status as one JSON document (`GET /v1/status`, the status page, `ehc-edge status`).
 * `collectStatus` asks every component at once, each with a time limit, so one hung component shows as
 * failed instead of hanging the page. Everything passes through maskDeep: masked data only.
 */
import type { CardHealth } from '../crypto/card.ts';
import type { UpstreamHealth } from '../protocol/upstream.ts';
import type { OutboxStats } from '../store/outbox.ts';
import { maskDeep, maskText } from '../platform/mask.ts';
import type { AuditState, MaskedSubject } from './audit.ts';
import type { ErrorCount } from './stats.ts';

export type ScannerState = 'ready' | 'disconnected' | 'error' | 'opening';

export interface ScannerStatus {
  id: string;
  name?: string;
  station?: string;
  driver?: string;
  state: ScannerState;
  /** ISO time of the last scan, null when none since start */
  lastScanAt: string | null;
  scans?: number;
  detail?: string;
}

export interface RecentVerification {
  time: string;
  /** `verify`, or `verify.rejected` for a refused code */
  action?: string;
  route?: string;
  ret_code?: string;
  scanner?: string;
  terminal?: string;
  subject?: MaskedSubject;
}

export interface StatusReport {
  /** every component healthy */
  ok: boolean;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  now: string;
  site: { orgCode: string; orgName?: string; termId: string };
  scanners: ScannerStatus[];
  card: CardHealth;
  upstream: UpstreamHealth;
  outbox: OutboxStats;
  errors: { windowSeconds: number; byCode: ErrorCount[] };
  audit?: Omit<AuditState, 'dir'>;
  recent: RecentVerification[];
  /** components that did not answer in time or threw */
  problems: string[];
}

export interface StatusSources {
  version: string;
  startedAt: Date;
  site: { orgCode: string; orgName?: string; termId: string };
  scanners(): ScannerStatus[];
  card(): Promise<CardHealth>;
  upstream(): Promise<UpstreamHealth>;
  outbox(): OutboxStats;
  errors?(windowSeconds: number): ErrorCount[];
  audit?(): AuditState;
  recent?(n: number): RecentVerification[];
  errorWindowSeconds?: number;
  probeTimeoutMs?: number;
  clock?: () => Date;
}

async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every string scrubbed with maskText, keys untouched. */
function scrubText(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskText(value);
  if (depth > 8 || !value || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubText(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubText(v, depth + 1)]));
}

export async function collectStatus(src: StatusSources): Promise<StatusReport> {
  const now = (src.clock ?? (() => new Date()))();
  const timeout = src.probeTimeoutMs ?? 2000;
  const problems: string[] = [];
  const [card, upstream] = await Promise.all([
    within(timeout, 'card', () => src.card()).catch((err: Error): CardHealth => {
      problems.push(err.message);
      return { ok: false, driver: 'unknown', detail: err.message };
    }),
    within(timeout, 'upstream', () => src.upstream()).catch((err: Error): UpstreamHealth => {
      problems.push(err.message);
      return { reachable: false, url: '', lastError: err.message };
    }),
  ]);
  const sync = <T>(what: string, f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
      return fallback;
    }
  };
  const scanners = sync('scanners', () => src.scanners(), []);
  const outbox = sync('outbox', () => src.outbox(), { depth: 0, bytes: 0, oldestAgeSeconds: null, dead: 0, full: false });
  const windowSeconds = src.errorWindowSeconds ?? 3600;
  const byCode = sync('errors', () => src.errors?.(windowSeconds) ?? [], []);
  const auditState = src.audit ? sync('audit', () => src.audit!(), undefined) : undefined;
  const audit = auditState ? (({ dir: _dir, ...rest }) => rest)(auditState) : undefined;
  const recent = sync('recent', () => src.recent?.(20) ?? [], []);
  // an integrity alarm (audit cut, head gone, outbox behind its high-water mark) is a problem until acknowledged
  for (const a of audit?.alarms ?? []) problems.push(`integrity: ${a.problem}: ${a.message}`);
  if (audit && audit.writable === false) problems.push(`audit: cannot write (${audit.lastError ?? 'unknown error'})`);
  const ok =
    card.ok &&
    upstream.reachable &&
    !outbox.full &&
    scanners.every((s) => s.state === 'ready') &&
    (audit ? audit.failures === 0 : true) &&
    problems.length === 0;
  const report: StatusReport = {
    ok,
    version: src.version,
    startedAt: src.startedAt.toISOString(),
    uptimeSeconds: Math.max(0, Math.round((now.getTime() - src.startedAt.getTime()) / 1000)),
    now: now.toISOString(),
    site: src.site,
    scanners,
    card,
    upstream,
    outbox,
    errors: { windowSeconds, byCode },
    ...(audit ? { audit } : {}),
    recent,
    problems,
  };
  // Person data is only in `recent` (subjects): key-based masking there. Elsewhere key-based masking
  // would mangle device and desk labels (a card's `device.name`, a scanner's `name`), so those strings
  // get free-text scrubbing only (ID and phone numbers).
  return { ...(scrubText({ ...report, recent: [] }) as StatusReport), recent: maskDeep(recent) as RecentVerification[] };
}
