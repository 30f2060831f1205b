/**
 * Prometheus metrics (prom-client) of one appliance instance. Each component registers its own
 * metrics on the registry it is given; `/metrics` serves `registry.metrics()`.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'ehc_edge_' });
  return registry;
}
