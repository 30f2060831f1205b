/** The verifier's Prometheus metrics: every verification counted and timed by outcome and route. */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { VerifyObserver } from './verifier.ts';

/** Counts and times every verification by outcome and route. */
export function verifyMetrics(registry: Registry): VerifyObserver {
  const total = new Counter({
    name: 'ehc_edge_verify_total',
    help: 'Verifications by return code and route',
    labelNames: ['ret_code', 'decided_by'] as const,
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'ehc_edge_verify_seconds',
    help: 'Verification latency inside the appliance',
    labelNames: ['decided_by'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3],
    registers: [registry],
  });
  return {
    verified(r, _req, ms) {
      total.inc({ ret_code: r.ret_code, decided_by: r.decided_by });
      seconds.observe({ decided_by: r.decided_by }, ms / 1000);
    },
    rejected(e, _req, ms) {
      total.inc({ ret_code: e.code, decided_by: 'rejected' });
      seconds.observe({ decided_by: 'rejected' }, ms / 1000);
    },
  };
}
