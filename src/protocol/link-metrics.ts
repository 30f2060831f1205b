/**
 * The link to the home card system on the appliance's prom-client registry, read at scrape time:
 * breaker state, how often it opened and how many calls it answered at once, and the days left of
 * the client certificate and the pinned CA (`ehc_edge_upstream_cert_expiring` is 1 inside
 * upstream.certWarnDays and when expired).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HttpUpstream } from './http-upstream.ts';

export function registerLinkMetrics(registry: Registry, upstream: Pick<HttpUpstream, 'state' | 'certificates'>): void {
  new Gauge({
    name: 'ehc_edge_upstream_link_open',
    help: '1 while the circuit breaker of the link to the home card system is open or half-open (calls answered at once, 8004)',
    registers: [registry],
    collect() {
      this.set(upstream.state.link.state === 'closed' ? 0 : 1);
    },
  });
  const counter = (name: string, help: string, read: () => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read();
        if (v > last) this.inc(v - last);
        last = Math.max(last, v);
      },
    });
  };
  counter('ehc_edge_upstream_link_opened_total', 'Times the circuit breaker opened', () => upstream.state.link.opened);
  counter('ehc_edge_upstream_link_short_circuited_total', 'Calls answered at once because the breaker was open', () => upstream.state.link.shortCircuited);
  new Gauge({
    name: 'ehc_edge_upstream_cert_days_left',
    help: 'Days until the client certificate (cert="client") or the pinned CA (cert="ca") expires; negative once expired',
    labelNames: ['cert'],
    registers: [registry],
    collect() {
      for (const c of upstream.certificates()) this.set({ cert: c.which }, c.daysLeft);
    },
  });
  new Gauge({
    name: 'ehc_edge_upstream_cert_expiring',
    help: '1 when the certificate expires within upstream.certWarnDays or has expired',
    labelNames: ['cert'],
    registers: [registry],
    collect() {
      for (const c of upstream.certificates()) this.set({ cert: c.which }, c.status === 'ok' ? 0 : 1);
    },
  });
}
