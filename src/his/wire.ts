/**
 * Operations for the composition root, in two constructions, each given what it needs when it is made:
 *
 *   const ops = await startOps({ config, card, outbox, log });      // audit trail, usage statistics, the
 *   stops.push(() => ops.close());                                   // verifier observer feeding both, audited
 *   observers.push(ops.observer);                                    // auth failures, the admin guard
 *   startReplay({ …, auditAnswer: ops.auditDeferredAnswer });       // deferred answers audited before they go out
 *   …verifier, scanning…
 *   const report = opsReport({ config, ops, card, upstream, outbox, scanners, version, startedAt });
 *   createHisApp({ …, status: report.status, authThrottle: ops.authThrottle, extensions: [...report.extensions] });
 *
 * The report comes after scanning because it shows the scanners; the verifier that scanning needs
 * comes after ops because ops observes it. Nothing is pushed into a component after it is built.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MiddlewareHandler } from 'hono';
import type { ApplianceConfig } from '../config/schema.ts';
import type { CardHealth, CardPrimitives } from '../crypto/card.ts';
import type { Upstream } from '../protocol/upstream.ts';
import type { DeferredAnswer, OutboxStats } from '../store/outbox.ts';
import type { VerifyObserver } from '../verify/verifier.ts';
import type { HisExtension } from './app.ts';
import { adminAuth } from './admin-auth.ts';
import { AuthThrottle, throttled } from './auth-throttle.ts';
import { opsExtensions } from './ops-routes.ts';
import { AuditTrail } from '../ops/audit.ts';
import type { Logger } from '../platform/log.ts';
import { deferredAnswerAudit, opsObserver } from '../ops/observer.ts';
import { UsageStats, type ScannerInfo } from '../ops/stats.ts';
import { collectStatus, DownSince, type CertificateInfo, type ScannerReport, type StatusReport } from '../ops/status.ts';
import type { ScannerView } from '../scan/index.ts';

export interface OpsDeps {
  config: ApplianceConfig;
  card: Pick<CardPrimitives, 'hmacSm3'>;
  log: Logger;
  /** the outbox, opened first: it keeps the audit head outside the audit folder, and its high-water mark is checked */
  outbox?: { readMeta(key: string): string | undefined; writeMeta(key: string, text: string): Promise<void>; highWater(): number };
}

export interface Ops {
  audit: AuditTrail;
  stats: UsageStats;
  observer: VerifyObserver;
  /** replay's auditAnswer: a deferred verification's answer audited before it is kept or heard */
  auditDeferredAnswer: (answer: DeferredAnswer, termId: string) => Promise<void>;
  /** failed-auth throttle of every key class (audits and logs failures once per address and window) */
  authThrottle: AuthThrottle;
  /** guard for state-changing routes: `app.post('/v1/admin/…', ops.adminGuard, handler)` */
  adminGuard: MiddlewareHandler;
  close(): Promise<void>;
}

export interface ReportDeps {
  config: ApplianceConfig;
  ops: Pick<Ops, 'audit' | 'stats'>;
  card: { health(): Promise<CardHealth> };
  upstream: Pick<Upstream, 'health'>;
  outbox: () => OutboxStats;
  /** live scanner states for the status page */
  scanners: () => ScannerReport[];
  /** scanner identities for read_term_list (附录E) */
  scannerInfos: () => ScannerInfo[];
  version: string;
  startedAt: Date;
}

/** What the appliance reports of itself: the status report, and the HIS extensions that show it (status page, stats routes). */
export interface OpsReport {
  status(): Promise<StatusReport>;
  extensions: HisExtension[];
}

/**
 * An outbox holding less than the audit head says was acknowledged (file emptied, deleted, replaced by
 * an older copy) has lost records nobody will deliver: a signed alarm, in status until acknowledged.
 */
async function checkOutboxHighWater(audit: AuditTrail, outbox: OpsDeps['outbox'], log: Logger): Promise<void> {
  const recorded = audit.recordedOutboxSeq();
  if (!outbox || recorded === undefined) return;
  const actual = outbox.highWater();
  if (actual >= recorded) return;
  if (audit.integrityAlarms().some((a) => a.outbox === true)) return; // still open from an earlier start
  const message =
    actual === 0
      ? `the outbox is empty and new, but the audit head recorded ${recorded} acknowledged records in it (deleted or emptied): undelivered records may be lost`
      : `the outbox's highest seq is ${actual}, but the audit head recorded ${recorded} acknowledged (replaced by an older copy?): records ${actual + 1}..${recorded} may be lost`;
  log.error('outbox behind its acknowledged high-water mark', { recorded, actual });
  await audit.raiseAlarm({ problem: actual === 0 ? 'outbox-missing' : 'outbox-behind', message, missing: { from: actual + 1, to: recorded }, outbox: true });
}

export async function startOps(deps: OpsDeps): Promise<Ops> {
  const { config, log } = deps;
  const audit = await AuditTrail.open({
    dir: path.join(config.stateDir, 'audit'),
    card: deps.card,
    macKey: config.card.keys.mac,
    retainDays: config.audit.retainDays,
    maxBytes: config.audit.maxBytes,
    logger: log.child({ component: 'audit' }),
    ...(deps.outbox
      ? {
          anchor: { read: () => deps.outbox!.readMeta('audit.head'), write: (text: string) => deps.outbox!.writeMeta('audit.head', text) },
          outboxSeq: () => deps.outbox!.highWater(),
        }
      : {}),
  });
  await checkOutboxHighWater(audit, deps.outbox, log);
  let stats: UsageStats;
  try {
    stats = await UsageStats.open({
      file: path.join(config.stateDir, 'stats', 'usage.json'),
      site: config.site,
      defaultScene: config.verify.treatmentCode,
      logger: log.child({ component: 'stats' }),
    });
  } catch (err) {
    await audit.close();
    throw err;
  }
  // a configuration change shows in the trail as a new digest of the file at start
  let configSm3 = '';
  try {
    configSm3 = createHash('sm3').update(readFileSync(config.configPath)).digest('hex');
  } catch {
    configSm3 = 'unreadable';
  }
  audit.record({ kind: 'config', action: 'config.loaded', detail: { file: config.configPath, sm3: configSm3, policy: config.verify.policy, card: config.card.driver } });

  const adminLog = log.child({ component: 'admin' });
  const authThrottle = new AuthThrottle({ ...config.his.authThrottle, audit, logger: log.child({ component: 'his' }) });

  return {
    audit,
    stats,
    observer: opsObserver({ audit, stats, defaultOperator: config.verify.operatorId, onFailure: config.audit.onFailure }),
    auditDeferredAnswer: deferredAnswerAudit({ audit, onFailure: config.audit.onFailure }),
    authThrottle,
    adminGuard: throttled(authThrottle, 'admin', adminAuth({ ...config.admin, hisApiKeys: config.his.apiKeys, audit, logger: adminLog })),
    async close() {
      await stats.close();
      await audit.close();
    },
  };
}

export function opsReport(deps: ReportDeps): OpsReport {
  const { config, ops } = deps;
  const since = new DownSince();
  const certificates = (): CertificateInfo[] => certificateInfos(config);
  return {
    extensions: opsExtensions({ stats: ops.stats, site: config.site, scanners: deps.scannerInfos }),
    status: () =>
      collectStatus({
        version: deps.version,
        startedAt: deps.startedAt,
        site: config.site,
        scanners: deps.scanners,
        card: () => deps.card.health(),
        upstream: () => deps.upstream.health(),
        outbox: deps.outbox,
        errors: (w) => ops.stats.recentErrors(w),
        audit: () => ops.audit.state(),
        recent: (n) => ops.audit.recentVerifications(n),
        certificates,
        since,
        outboxWarnDepth: Math.ceil(config.outbox.maxRecords * 0.8),
      }),
  };
}

const REPORTED_STATE: Record<ScannerView['state'], ScannerReport['state']> = { open: 'ready', closed: 'disconnected', refused: 'refused', failed: 'error', absent: 'unplugged' };

/** The scanner manager's views as the status report shows them (`lastScanAt`: scanner id → ISO time of its last scan). */
export function scannerReports(views: readonly ScannerView[], lastScanAt: ReadonlyMap<string, string>): ScannerReport[] {
  return views.map((v) => ({
    id: v.scannerId,
    name: v.name,
    station: v.station,
    driver: v.driver,
    state: REPORTED_STATE[v.state] ?? 'error',
    lastScanAt: lastScanAt.get(v.scannerId) ?? null,
    scans: v.scans,
    detail: v.message,
    configured: v.configured,
    ...(v.state === 'absent' ? { since: v.absentSince, seenBefore: v.seenBefore } : {}),
  }));
}

/** The client certificate towards the home card system (and the HIS port's), for expiry warnings. */
function certificateInfos(config: ApplianceConfig): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  const files: Array<[string, string | undefined]> = [
    ['upstream client', config.upstream.tls?.cert],
    ['HIS port', config.his.tls?.cert],
  ];
  for (const [name, file] of files) {
    if (!file) continue;
    try {
      const cert = new X509Certificate(readFileSync(file));
      out.push({ name, notAfter: new Date(cert.validTo).toISOString() });
    } catch {
      // unreadable: the component using it reports that
    }
  }
  return out;
}
