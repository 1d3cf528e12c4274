// Plain KPA in the simulation: Knative's scraper (the mean of the pods that answered, times the
// Ready pods; nothing recorded when none answered) feeding its stable and panic window averages
// (linear, 1-second buckets) and its decider. Knative scrapes a sample of at most 16 pods; the
// simulation scrapes them all, which only makes KPA's input better.
import { SecondBuckets } from '../../apps/autoscaler/src/second-buckets.ts';
import { createPlainKpa, type KpaSpec } from './plain-kpa.ts';
import type { SimulatedAutoscaler } from './simulate.ts';

export function plainKpaAutoscaler(spec: KpaSpec, panicWindowSeconds: number): SimulatedAutoscaler {
  const buckets = new SecondBuckets(spec.stableWindowSeconds);
  const decide = createPlainKpa(spec);
  return {
    observe(nowMs, scrapes) {
      const answered = scrapes.flatMap((scrape) => (scrape.sample === undefined ? [] : [scrape.sample.inFlight]));
      if (answered.length === 0) return;
      const mean = answered.reduce((sum, value) => sum + value, 0) / answered.length;
      buckets.record(nowMs, mean * scrapes.length);
    },
    decide(nowMs, readyPods) {
      return decide({
        nowMs,
        readyPods,
        stableConcurrency: buckets.windowAverage(nowMs, spec.stableWindowSeconds),
        panicConcurrency: buckets.windowAverage(nowMs, panicWindowSeconds),
      })?.desired;
    },
  };
}
