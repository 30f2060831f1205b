/**
 * The appliance's status as one JSON document (`GET /v1/status`, the status page, `ehc-edge status`).
 * `collectStatus` asks every component at once, each with a time limit, so one hung component shows as
 * failed instead of hanging the page. Everything passes through maskDeep: masked data only.
 *
 * Health is one rule for the page, the CLI's exit code and the metrics: `ok` when `problems` is empty,
 * else `degraded`, or `down` when a problem stops verification itself (card down, outbox full).
 * Every problem carries its reason (in zh-CN and English) and, for an outage, since when.
 */
import type { CardHealth } from '../crypto/card.ts';
import type { UpstreamHealth } from '../protocol/upstream.ts';
import type { OutboxStats } from '../store/outbox.ts';
import { maskDeep, maskText } from '../platform/mask.ts';
import type { AuditState, MaskedSubject } from './audit.ts';
import type { ErrorCount } from './stats.ts';

export type ScannerState = 'ready' | 'disconnected' | 'error' | 'opening' | 'unplugged' | 'refused';

/** What the status report says of one scanner (built from the scanner manager's view by src/his/wire.ts `scannerReports`). */
export interface ScannerReport {
  id: string;
  name?: string;
  station?: string;
  driver?: string;
  state: ScannerState;
  /** ISO time of the last scan, null when none since start */
  lastScanAt: string | null;
  scans?: number;
  detail?: string;
  /** named in the config's scanners[]: listed even when absent, and a problem when not ready */
  configured?: boolean;
  /** unplugged: ISO time it went away (or the appliance started, when never seen) */
  since?: string;
  /** unplugged: it was plugged in earlier (false: not seen since start) */
  seenBefore?: boolean;
}

export type Health = 'ok' | 'degraded' | 'down';

export interface Problem {
  component: 'card' | 'upstream' | 'scanner' | 'outbox' | 'audit' | 'certificate' | 'status';
  /** the scanner id, certificate name … */
  id?: string;
  /** down: verification itself is refused; degraded: it works, something needs attention */
  severity: 'degraded' | 'down';
  /** ISO time the problem started, when known */
  since?: string;
  /** why, for people: English and zh-CN */
  reason: string;
  reason_zh: string;
}

export interface CertificateInfo {
  name: string;
  /** ISO time */
  notAfter: string;
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
  /** every component healthy: `problems` is empty */
  ok: boolean;
  health: Health;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  now: string;
  site: { orgCode: string; orgName?: string; termId: string };
  scanners: ScannerReport[];
  card: CardHealth;
  upstream: UpstreamHealth;
  outbox: OutboxStats;
  errors: { windowSeconds: number; byCode: ErrorCount[] };
  audit?: Omit<AuditState, 'dir'>;
  recent: RecentVerification[];
  /** every reason the badge is not green; empty exactly when ok */
  problems: Problem[];
  certificates?: Array<CertificateInfo & { daysLeft: number }>;
}

export interface StatusSources {
  version: string;
  startedAt: Date;
  site: { orgCode: string; orgName?: string; termId: string };
  scanners(): ScannerReport[];
  card(): Promise<CardHealth>;
  upstream(): Promise<UpstreamHealth>;
  outbox(): OutboxStats;
  errors?(windowSeconds: number): ErrorCount[];
  audit?(): AuditState;
  recent?(n: number): RecentVerification[];
  certificates?(): CertificateInfo[];
  errorWindowSeconds?: number;
  probeTimeoutMs?: number;
  clock?: () => Date;
  /** remembers since when a component is down (one per appliance; a fresh one forgets) */
  since?: DownSince;
  /** outbox depth from which it is a problem (default: none) */
  outboxWarnDepth?: number;
  /** a certificate expiring within this many days is a problem (default 30) */
  certWarnDays?: number;
}

/** Since when each component has been down: set on the first look that finds it down, cleared when up. */
export class DownSince {
  readonly #since = new Map<string, string>();
  note(key: string, down: boolean, now: Date): string | undefined {
    if (!down) {
      this.#since.delete(key);
      return undefined;
    }
    const known = this.#since.get(key);
    if (known) return known;
    this.#since.set(key, now.toISOString());
    return now.toISOString();
  }
}

function scannerLabel(s: ScannerReport): string {
  return s.name ? `${s.name} (${s.id})` : s.id;
}

/** The reasons the appliance is not green, one per problem. */
export function problemsOf(
  parts: { card: CardHealth; upstream: UpstreamHealth; outbox: OutboxStats; scanners: ScannerReport[]; audit?: Omit<AuditState, 'dir'>; certificates: Array<CertificateInfo & { daysLeft: number }> },
  opts: { since: DownSince; now: Date; outboxWarnDepth?: number; certWarnDays: number },
): Problem[] {
  const out: Problem[] = [];
  const { since, now } = opts;
  const cardSince = since.note('card', !parts.card.ok, now);
  if (!parts.card.ok) out.push({ component: 'card', severity: 'down', since: cardSince, reason: `crypto card down: ${parts.card.detail}`, reason_zh: `密码卡不可用：${parts.card.detail}` });
  const upSince = since.note('upstream', !parts.upstream.reachable, now);
  if (!parts.upstream.reachable) {
    const why = parts.upstream.lastError ? `: ${parts.upstream.lastError}` : '';
    out.push({ component: 'upstream', severity: 'degraded', since: upSince, reason: `home card system unreachable${why}`, reason_zh: `发卡方系统（VPN）不可达${why ? '：' + parts.upstream.lastError : ''}` });
  }
  for (const s of parts.scanners) {
    const label = scannerLabel(s);
    if (s.state === 'unplugged') {
      out.push({
        component: 'scanner',
        id: s.id,
        severity: 'degraded',
        since: s.since,
        reason: s.seenBefore ? `scanner ${label} unplugged` : `scanner ${label} not plugged in`,
        reason_zh: s.seenBefore ? `扫码器 ${label} 已拔出` : `扫码器 ${label} 未接入`,
      });
    } else if (s.state === 'refused') {
      out.push({ component: 'scanner', id: s.id, severity: 'degraded', reason: `scanner ${label} refused: keyboard mode (switch it to serial or HID POS mode)`, reason_zh: `扫码器 ${label} 被拒绝：键盘模式（请切换到串口或 HID POS 模式）` });
    } else if (s.state === 'error') {
      out.push({ component: 'scanner', id: s.id, severity: 'degraded', since: since.note(`scanner:${s.id}`, true, now), reason: `scanner ${label} error: ${s.detail ?? 'unknown'}`, reason_zh: `扫码器 ${label} 故障：${s.detail ?? '未知'}` });
    } else if (s.state !== 'ready') {
      out.push({ component: 'scanner', id: s.id, severity: 'degraded', reason: `scanner ${label} ${s.state}`, reason_zh: `扫码器 ${label} 未就绪（${s.state}）` });
    }
    if (s.state !== 'error') since.note(`scanner:${s.id}`, false, now);
  }
  const o = parts.outbox;
  if (o.full) out.push({ component: 'outbox', severity: 'down', since: since.note('outbox.full', true, now), reason: `outbox full (${o.depth} records): new records are refused`, reason_zh: `待上传队列已满（${o.depth} 条）：新记录被拒绝` });
  else {
    since.note('outbox.full', false, now);
    if (opts.outboxWarnDepth !== undefined && o.depth >= opts.outboxWarnDepth) {
      out.push({ component: 'outbox', severity: 'degraded', since: since.note('outbox.depth', true, now), reason: `outbox holds ${o.depth} records (warning from ${opts.outboxWarnDepth})`, reason_zh: `待上传队列积压 ${o.depth} 条（告警阈值 ${opts.outboxWarnDepth}）` });
    } else since.note('outbox.depth', false, now);
  }
  if (o.dead > 0) out.push({ component: 'outbox', id: 'dead', severity: 'degraded', reason: `${o.dead} dead letters (ehc-edge queue dead)`, reason_zh: `${o.dead} 条记录上传失败（ehc-edge queue dead）` });
  // an integrity alarm (audit cut, head or folder gone, outbox behind its high-water mark) stays until an
  // admin acknowledges it (ehc-edge verify-audit --ack)
  for (const a of parts.audit?.alarms ?? []) {
    out.push({ component: 'audit', id: `integrity:${a.problem}`, severity: 'degraded', since: a.raisedAt, reason: `integrity alarm (${a.problem}): ${a.message}`, reason_zh: `完整性告警（${a.problem}）：${a.message}（确认：ehc-edge verify-audit --ack）` });
  }
  if (parts.audit && parts.audit.writable === false) {
    out.push({ component: 'audit', id: 'write', severity: 'down', reason: `audit trail cannot be written (${parts.audit.lastError ?? 'unknown'}): answers carrying identity are refused (audit.onFailure = refuse)`, reason_zh: `审计日志无法写入（${parts.audit.lastError ?? '未知'}）：含身份信息的应答被拒绝` });
  }
  if (parts.audit && parts.audit.failures > 0) {
    out.push({ component: 'audit', severity: 'degraded', reason: `audit not writing: ${parts.audit.failures} failed appends (${parts.audit.lastError ?? 'unknown'})`, reason_zh: `审计日志写入失败 ${parts.audit.failures} 次（${parts.audit.lastError ?? '未知'}）` });
  }
  if (parts.audit?.pruneFailures) {
    out.push({ component: 'audit', id: 'prune', severity: 'degraded', reason: `audit retention failing: ${parts.audit.pruneFailures} failed prunes (${parts.audit.lastPruneError ?? 'unknown'}); old days are kept`, reason_zh: `审计日志清理失败 ${parts.audit.pruneFailures} 次（${parts.audit.lastPruneError ?? '未知'}）；旧日志暂未删除` });
  }
  for (const c of parts.certificates) {
    if (c.daysLeft <= opts.certWarnDays) {
      const text = c.daysLeft < 0 ? `certificate ${c.name} expired on ${c.notAfter}` : `certificate ${c.name} expires in ${c.daysLeft} days (${c.notAfter})`;
      const zh = c.daysLeft < 0 ? `证书 ${c.name} 已于 ${c.notAfter} 过期` : `证书 ${c.name} 将在 ${c.daysLeft} 天后过期（${c.notAfter}）`;
      out.push({ component: 'certificate', id: c.name, severity: c.daysLeft < 0 ? 'down' : 'degraded', reason: text, reason_zh: zh });
    }
  }
  return out;
}

export function healthOf(problems: Problem[]): Health {
  if (problems.some((p) => p.severity === 'down')) return 'down';
  return problems.length ? 'degraded' : 'ok';
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
  const failures: string[] = [];
  const [card, upstream] = await Promise.all([
    within(timeout, 'card', () => src.card()).catch((err: Error): CardHealth => {
      failures.push(err.message);
      return { ok: false, driver: 'unknown', detail: err.message };
    }),
    within(timeout, 'upstream', () => src.upstream()).catch((err: Error): UpstreamHealth => {
      failures.push(err.message);
      return { reachable: false, url: '', lastError: err.message };
    }),
  ]);
  const sync = <T>(what: string, f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
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
  const certificates = sync('certificates', () => src.certificates?.() ?? [], []).map((c) => ({ ...c, daysLeft: Math.floor((Date.parse(c.notAfter) - now.getTime()) / 86_400_000) }));
  const found = problemsOf(
    { card, upstream, outbox, scanners, audit, certificates },
    { since: src.since ?? new DownSince(), now, outboxWarnDepth: src.outboxWarnDepth, certWarnDays: src.certWarnDays ?? 30 },
  );
  for (const f of failures) found.push({ component: 'status', severity: 'degraded', reason: `not answering: ${f}`, reason_zh: `无应答：${f}` });
  const health = healthOf(found);
  const report: StatusReport = {
    ok: found.length === 0,
    health,
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
    problems: found,
    ...(certificates.length ? { certificates } : {}),
  };
  // Person data is only in `recent` (subjects): key-based masking there. Elsewhere key-based masking
  // would mangle device and desk labels (a card's `device.name`, a scanner's `name`), so those strings
  // get free-text scrubbing only (ID and phone numbers).
  return { ...(scrubText({ ...report, recent: [] }) as StatusReport), recent: maskDeep(recent) as RecentVerification[] };
}
