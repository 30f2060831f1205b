/**
 * A gauge for every component state, read from the status report at scrape time (one report per
 * scrape, shared by all gauges), so `/metrics`, `/v1/status`, the page and `ehc-edge status` cannot
 * disagree. Alerting rules and the Grafana dashboard in packaging/monitoring/ use these names.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Health, StatusReport } from './status.ts';

const HEALTH: Record<Health, number> = { ok: 0, degraded: 1, down: 2 };

export function registerStatusMetrics(registry: Registry, status: () => Promise<StatusReport>, maxAgeMs = 1000): void {
  let cached: { at: number; report: Promise<StatusReport> } | undefined;
  const report = () => {
    const now = Date.now();
    if (!cached || now - cached.at > maxAgeMs) cached = { at: now, report: status() };
    return cached.report;
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, s: StatusReport) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await report();
        this.reset();
        fill(this, s);
      },
    });
  gauge('ehc_edge_info', 'Version and site of this appliance (always 1)', ['version', 'org_code', 'term_id'], (g, s) => g.set({ version: s.version, org_code: s.site.orgCode, term_id: s.site.termId }, 1));
  gauge('ehc_edge_health', 'Overall health: 0 ok, 1 degraded, 2 down (verification refused)', [], (g, s) => g.set(HEALTH[s.health]));
  gauge('ehc_edge_problems', 'Problems by component (the reasons are in /v1/status)', ['component', 'severity'], (g, s) => {
    for (const p of s.problems) g.inc({ component: p.component, severity: p.severity });
  });
  gauge('ehc_edge_card_up', '1 when the crypto card answers', ['driver'], (g, s) => g.set({ driver: s.card.driver }, s.card.ok ? 1 : 0));
  gauge('ehc_edge_upstream_up', '1 when the home card system (over the VPN) answers its health probe', [], (g, s) => g.set(s.upstream.reachable ? 1 : 0));
  gauge('ehc_edge_upstream_latency_seconds', 'Latency of the last health probe to the home card system', [], (g, s) => {
    if (s.upstream.latencyMs !== undefined) g.set(s.upstream.latencyMs / 1000);
  });
  gauge('ehc_edge_scanner_up', '1 when the scanner is open and reading; configured scanners are listed while absent (0)', ['scanner', 'name', 'station', 'state'], (g, s) => {
    for (const x of s.scanners) g.set({ scanner: x.id, name: x.name ?? '', station: x.station ?? '', state: x.state }, x.state === 'ready' ? 1 : 0);
  });
  gauge('ehc_edge_certificate_expiry_seconds', 'Seconds until a certificate expires (negative: expired)', ['name'], (g, s) => {
    for (const c of s.certificates ?? []) g.set({ name: c.name }, (Date.parse(c.notAfter) - Date.parse(s.now)) / 1000);
  });
}
