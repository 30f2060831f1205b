/**
 * The audit trail's figures on the appliance's prom-client registry, read at scrape time:
 * `ehc_edge_audit_integrity_alarms` (open alarms: a cut chain, a missing head or folder, an outbox behind
 * its high-water mark — 0 again only after `ehc-edge verify-audit --ack`), `ehc_edge_audit_failures_total`
 * (appends that could not be written), `ehc_edge_audit_last_seq`.
 */
import { Gauge, type Registry } from 'prom-client';
import type { AuditState } from './audit.ts';

export function registerAuditMetrics(registry: Registry, state: () => AuditState): void {
  const gauge = (name: string, help: string, read: (s: AuditState) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(state()));
      },
    });
  gauge('ehc_edge_audit_integrity_alarms', 'Integrity alarms of the audit trail not yet acknowledged by an admin', (s) => s.alarms?.length ?? 0);
  gauge('ehc_edge_audit_failures_total', 'Audit appends that failed (disk full, I/O, card) since start', (s) => s.failures);
  gauge('ehc_edge_audit_last_seq', 'Seq of the last audit record', (s) => s.lastSeq);
}
