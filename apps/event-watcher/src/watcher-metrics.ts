import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WatcherGauges {
  pendingEvents: () => number;
  /** Seconds since the oldest event not yet handled was seen; 0 when none. */
  lagSeconds: () => number;
  leaseHeld: () => boolean;
}

/** What the event-watcher reports on /metrics; counters are labelled by trigger index. */
export function createWatcherMetrics(gauges: WatcherGauges) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const byTrigger = (name: string, help: string) => new Counter({ name, help, labelNames: ['trigger'], registers: [registry] });
  new Gauge({ name: 'kublambda_watcher_pending_events', help: 'Events seen and not yet handled (queued or being delivered).', registers: [registry], collect() { this.set(gauges.pendingEvents()); } });
  new Gauge({ name: 'kublambda_watcher_lag_seconds', help: 'Age of the oldest event not yet handled; 0 when none.', registers: [registry], collect() { this.set(gauges.lagSeconds()); } });
  new Gauge({ name: 'kublambda_watcher_lease_held', help: '1 while this watcher holds its lambda\'s lease and may deliver.', registers: [registry], collect() { this.set(gauges.leaseHeld() ? 1 : 0); } });
  return {
    registry,
    seen: byTrigger('kublambda_watcher_events_seen_total', 'Changes seen (watch events and relist differences).'),
    matched: byTrigger('kublambda_watcher_events_matched_total', 'Changes that passed the event types and the condition.'),
    delivered: byTrigger('kublambda_watcher_events_delivered_total', 'Events the lambda accepted (2xx).'),
    retries: byTrigger('kublambda_watcher_delivery_retries_total', 'Delivery attempts that failed and were tried again.'),
    deadLettered: byTrigger('kublambda_watcher_events_dead_lettered_total', 'Events given up on and put on the dead-letter list.'),
    conditionErrors: byTrigger('kublambda_watcher_condition_errors_total', 'Condition evaluations that failed (counted as not matched).'),
    relists: new Counter({ name: 'kublambda_watcher_relists_total', help: 'Full lists of a trigger\'s resource, by reason (start, gone).', labelNames: ['trigger', 'reason'], registers: [registry] }),
    deliveryDuration: new Histogram({
      name: 'kublambda_watcher_delivery_duration_seconds',
      help: 'From when the watcher saw a change to the lambda\'s 2xx.',
      labelNames: ['trigger'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
}

export type WatcherMetrics = ReturnType<typeof createWatcherMetrics>;
