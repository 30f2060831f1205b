/**
 * Outbox and replay figures on the appliance's prom-client registry, read at scrape time from
 * `replay.metrics()` (gauges as gauges, `*_total` as counters advanced by their delta).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Replay } from './replay.ts';

const HELP: Record<string, string> = {
  ehc_edge_outbox_depth: 'Records waiting in the outbox',
  ehc_edge_outbox_bytes: 'Sealed bytes waiting in the outbox',
  ehc_edge_outbox_dead: 'Dead letters kept (business rejections, unreadable records)',
  ehc_edge_outbox_full: '1 when the outbox refuses new records (outbox.whenFull = reject-new)',
  ehc_edge_outbox_oldest_age_seconds: 'Age of the oldest waiting record',
  ehc_edge_outbox_appended_total: 'Records appended (durable)',
  ehc_edge_outbox_rejected_full_total: 'Appends refused because the outbox was full',
  ehc_edge_outbox_write_errors_total: 'Outbox commits that failed (disk full, I/O)',
  ehc_edge_replay_sent_total: 'Replay sends to the home card system',
  ehc_edge_replay_delivered_total: 'Records delivered (0000 or 3002)',
  ehc_edge_replay_duplicates_total: 'Deliveries answered 3002 (already done upstream)',
  ehc_edge_replay_dead_total: 'Records turned into dead letters by a business rejection',
  ehc_edge_replay_retries_total: 'Sends that failed for a network or busy reason',
  ehc_edge_replay_probes_total: 'Health probes replay itself ran while the breaker was open (upstreams that do not probe by themselves)',
  ehc_edge_replay_yields_total: 'Times replay waited for busy desks (a verification answered within the last second and event-loop utilization above outbox.replayYieldAbove)',
  ehc_edge_replay_breaker_open: '1 while the link replay acts on is open (the upstream link breaker, or replay\'s own without one)',
  ehc_edge_replay_in_flight: 'Records sent and not yet answered (at most outbox.replayWindow)',
};

export function registerOutboxMetrics(registry: Registry, replay: Pick<Replay, 'metrics'>): void {
  const names = Object.keys(replay.metrics());
  for (const name of names) {
    const help = HELP[name] ?? name;
    if (name.endsWith('_total')) {
      let last = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const v = replay.metrics()[name] ?? 0;
          if (v > last) this.inc(v - last);
          last = Math.max(last, v);
        },
      });
    } else {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(replay.metrics()[name] ?? 0);
        },
      });
    }
  }
}
