// Kublambda's decider in the simulation, fed as the autoscaler feeds it: every Ready runner's
// scrape into PoolWindows (failed scrapes counted as busy), a decision every few seconds.
import { decideScale, initialScalingState, type ScalingConfig } from '../../apps/autoscaler/src/decide-scale.ts';
import { PoolWindows } from '../../apps/autoscaler/src/pool-windows.ts';
import type { SimulatedAutoscaler } from './simulate.ts';

export function kublambdaAutoscaler(config: ScalingConfig): SimulatedAutoscaler {
  const windows = new PoolWindows({ stableSeconds: config.stableWindowSeconds, panicSeconds: config.panicWindowSeconds });
  let state = initialScalingState(0);
  return {
    observe(nowMs, scrapes) {
      windows.record(
        nowMs,
        scrapes.map((scrape) => ({ pod: String(scrape.pod), sample: scrape.sample && { ...scrape.sample, cpuSeconds: 0 } })),
      );
    },
    decide(nowMs, readyPods, replicas) {
      const averages = windows.averages(nowMs);
      const next = decideScale(config, { nowMs, readyPods, replicas, ...averages }, state);
      state = next.state;
      return next.decision.desired;
    },
  };
}
