// A port of Knative Serving's KPA decision (pkg/autoscaler/scaling/autoscaler.go, v0.50) with
// its linear window averages, for the simulation to compare against: the same steps in the
// same order, bounds (min/max scale) applied after it as Knative's PodAutoscaler does.
export interface KpaSpec {
  /** Concurrency per pod to aim for: the target times the utilization (Knative: 100 x 0.7). */
  targetPerPod: number;
  /** Panic when the panic-window desire reaches this multiple of the ready pods (2). */
  panicThreshold: number;
  /** Seconds; panic is left one stable window after its last over-threshold decision. */
  stableWindowSeconds: number;
  /** At most ceil(rate x ready) pods per decision (1000). */
  maxScaleUpRate: number;
  /** At least floor(ready / rate) pods per decision (2). */
  maxScaleDownRate: number;
  /** Seconds of the sliding maximum over desires that delays scaling down (0: off). */
  scaleDownDelaySeconds: number;
  minReplicas: number;
  maxReplicas: number;
}

export const KNATIVE_DEFAULTS: KpaSpec = {
  targetPerPod: 70,
  panicThreshold: 2,
  stableWindowSeconds: 60,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 0,
  minReplicas: 1,
  maxReplicas: 1000,
};

export interface KpaInput {
  nowMs: number;
  /** Window averages of the pool's total concurrency; undefined: no data in the window. */
  stableConcurrency: number | undefined;
  panicConcurrency: number | undefined;
  readyPods: number;
}

export interface KpaDecision {
  desired: number;
  panic: boolean;
}

/** A KPA decider with its state (panic start, the panic maximum, the delay window). */
export function createPlainKpa(spec: KpaSpec): (input: KpaInput) => KpaDecision | undefined {
  let panicSinceMs: number | undefined;
  let maxPanicPods = 0;
  const delayWindow: Array<{ atMs: number; desired: number }> = [];
  return (input) => {
    if (input.stableConcurrency === undefined || input.panicConcurrency === undefined) return undefined;
    const readyPods = Math.max(1, input.readyPods);
    const maxScaleUp = Math.ceil(spec.maxScaleUpRate * readyPods);
    const maxScaleDown = Math.floor(readyPods / spec.maxScaleDownRate);
    const dspc = Math.ceil(input.stableConcurrency / spec.targetPerPod);
    const dppc = Math.ceil(input.panicConcurrency / spec.targetPerPod);
    const desiredStable = Math.min(Math.max(dspc, maxScaleDown), maxScaleUp);
    const desiredPanic = Math.min(Math.max(dppc, maxScaleDown), maxScaleUp);
    const overThreshold = dppc / readyPods >= spec.panicThreshold;
    if (overThreshold) panicSinceMs = input.nowMs;
    else if (panicSinceMs !== undefined && panicSinceMs + spec.stableWindowSeconds * 1000 < input.nowMs) {
      panicSinceMs = undefined;
      maxPanicPods = 0;
    }
    let desired = desiredStable;
    if (panicSinceMs !== undefined) {
      desired = Math.max(desired, desiredPanic);
      // No scaling down while panicking: only increases apply.
      maxPanicPods = Math.max(maxPanicPods, desired);
      desired = maxPanicPods;
    }
    if (spec.scaleDownDelaySeconds > 0) {
      delayWindow.push({ atMs: input.nowMs, desired });
      while (delayWindow[0]!.atMs <= input.nowMs - spec.scaleDownDelaySeconds * 1000) delayWindow.shift();
      desired = Math.max(...delayWindow.map((entry) => entry.desired));
    }
    return { desired: Math.min(Math.max(desired, spec.minReplicas), spec.maxReplicas), panic: panicSinceMs !== undefined };
  };
}
