// The autoscaler's decision: a pure function of (configuration, what the window averages say,
// the pool now, the time, the previous state) -> (replicas, why, the next state). It starts from
// Knative's KPA (stable and panic windows, a panic threshold, rate limits, an optional
// scale-down delay) and differs where KPA's users report trouble:
//  - CPU: runners run many lambdas, some CPU-bound, so the pool's CPU against a target is a
//    second desire; the larger of the two wins.
//  - Leaving panic steps down at most by the max scale-down rate per decision, through the
//    stable desire, instead of dropping to it at once (flapping when panic ends).
//  - Scaling down needs the load to be clearly below what one pod fewer would carry (a
//    hysteresis band), so noise around a boundary does not turn the pool up and down.
//  - Demand, not the in-flight count (pool-windows.ts): the in-flight count of a saturated pool
//    grows with its queue, not with the load, which is how slow-starting pods get
//    over-provisioned. Pods asked for and not Ready yet count as coming for the panic threshold
//    (up to a timeout), and in panic a falling panic window (a queue draining) raises nothing.
//  - A restarted autoscaler does not shrink the pool before it has seen one stable window.

export interface ScalingConfig {
  /** Concurrency per pod to aim for (the target times the utilization). */
  targetConcurrencyPerPod: number;
  /** CPU cores per pod to aim for (the pod's cores times the CPU utilization target); undefined: CPU does not count. */
  targetCpuPerPod: number | undefined;
  stableWindowSeconds: number;
  panicWindowSeconds: number;
  /** Panic when the panic-window desire reaches this multiple of the pods Ready or coming. */
  panicThreshold: number;
  /** At most ceil(rate x Ready pods) per decision. */
  maxScaleUpRate: number;
  /** At least floor(Ready pods / rate) per decision. */
  maxScaleDownRate: number;
  /** Scale down only when the load fits one pod fewer at this fraction below the target. */
  scaleDownHysteresis: number;
  /** Seconds of the sliding maximum of desires that delays scaling down (0: off). */
  scaleDownDelaySeconds: number;
  /** Pods asked for that are not Ready after this long no longer hold the desire back. */
  podStartTimeoutSeconds: number;
  minReplicas: number;
  maxReplicas: number;
}

export interface ScalingInput {
  nowMs: number;
  readyPods: number;
  /** The Deployment's replicas now. */
  replicas: number;
  /** Window averages of the pool's total in-flight requests; stable undefined: no data in the window. */
  concurrency: { stable: number | undefined; panic: number | undefined; recent: number | undefined; falling: boolean };
  /** Window averages of the pool's CPU cores in use. */
  cpu: { stable: number | undefined; panic: number | undefined };
}

export type ScalingReason = 'stable' | 'panic' | 'cpu' | 'bounds' | 'no-data';

export interface ScalingDecision {
  desired: number;
  reason: ScalingReason;
  panic: boolean;
  /** The desires it came from, for metrics and Events. */
  stableDesire: number;
  panicDesire: number;
}

export interface ScalingState {
  startedAtMs: number;
  /** The last decision over the panic threshold; undefined when not panicking. */
  panicSinceMs: number | undefined;
  /** The most replicas decided during this panic: panic never scales down. */
  panicFloor: number;
  /** Since when replicas have been above the Ready pods (pods starting). */
  pendingSinceMs: number | undefined;
  delayWindow: Array<{ atMs: number; desired: number }>;
}

export function initialScalingState(nowMs: number): ScalingState {
  return { startedAtMs: nowMs, panicSinceMs: undefined, panicFloor: 0, pendingSinceMs: undefined, delayWindow: [] };
}

export function decideScale(config: ScalingConfig, input: ScalingInput, previous: ScalingState): { decision: ScalingDecision; state: ScalingState } {
  const state: ScalingState = { ...previous, delayWindow: previous.delayWindow.filter((entry) => entry.atMs > input.nowMs - config.scaleDownDelaySeconds * 1000) };
  const pending = input.replicas > input.readyPods;
  state.pendingSinceMs = pending ? (previous.pendingSinceMs ?? input.nowMs) : undefined;

  if (input.concurrency.stable === undefined) {
    // A whole window without data: keep the scale.
    return { decision: { desired: input.replicas, reason: 'no-data', panic: state.panicSinceMs !== undefined, stableDesire: 0, panicDesire: 0 }, state };
  }

  const ready = Math.max(1, input.readyPods);
  const perPod = (value: number | undefined, target: number | undefined) => (value === undefined || target === undefined ? 0 : Math.ceil(value / target));
  const concurrencyStable = perPod(input.concurrency.stable, config.targetConcurrencyPerPod);
  const concurrencyPanic = perPod(input.concurrency.panic ?? input.concurrency.stable, config.targetConcurrencyPerPod);
  const cpuStable = perPod(input.cpu.stable, config.targetCpuPerPod);
  const cpuPanic = perPod(input.cpu.panic ?? input.cpu.stable, config.targetCpuPerPod);
  // The last seconds alone can start a panic and size it: a burst shows there before it fills the
  // panic window; noise cannot reach the panic threshold.
  const burstDesire = perPod(input.concurrency.recent, config.targetConcurrencyPerPod);
  const stableDesire = Math.max(concurrencyStable, cpuStable);
  const panicDesire = Math.max(concurrencyPanic, cpuPanic);
  const cpuLeads = cpuStable > concurrencyStable || cpuPanic > concurrencyPanic;
  // The panic window's desire with the hysteresis band on top: noise within the band raises nothing.
  const band = config.scaleDownHysteresis;
  const panicDesireBeyondBand = Math.max(
    perPod(input.concurrency.panic, config.targetConcurrencyPerPod * (1 + band)),
    perPod(input.cpu.panic, config.targetCpuPerPod === undefined ? undefined : config.targetCpuPerPod * (1 + band)),
  );

  const startingPodsHold = pending && input.nowMs - state.pendingSinceMs! < config.podStartTimeoutSeconds * 1000;
  // Pods asked for count as coming while they start: a pool that waits for them is not in panic.
  const capacityComing = startingPodsHold ? Math.max(ready, input.replicas) : ready;
  const overThreshold = Math.max(panicDesire, burstDesire) / capacityComing >= config.panicThreshold;
  if (overThreshold) state.panicSinceMs = input.nowMs;
  else if (state.panicSinceMs !== undefined && state.panicSinceMs + config.stableWindowSeconds * 1000 < input.nowMs) {
    state.panicSinceMs = undefined;
    state.panicFloor = 0;
  }
  const panic = state.panicSinceMs !== undefined;

  let desired: number;
  let reason: ScalingReason;
  if (panic) {
    desired = Math.max(state.panicFloor, panicDesire, stableDesire, burstDesire);
    reason = cpuLeads ? 'cpu' : 'panic';
  } else if (stableDesire > input.replicas || panicDesireBeyondBand > input.replicas) {
    // Up as soon as the panic window asks for it by more than the band (the demand it counts
    // leaves queues out, so it does not run away while pods start); down needs both windows.
    desired = Math.max(stableDesire, panicDesireBeyondBand);
    reason = cpuLeads ? 'cpu' : panicDesireBeyondBand > stableDesire ? 'panic' : 'stable';
  } else {
    // Down only when the load fits the fewer pods with room to spare.
    const roomy = Math.max(
      perPod(input.concurrency.stable, config.targetConcurrencyPerPod * (1 - band)),
      perPod(input.cpu.stable, config.targetCpuPerPod === undefined ? undefined : config.targetCpuPerPod * (1 - band)),
    );
    desired = Math.min(input.replicas, roomy);
    // Leaving panic (or any large drop) steps down by at most the max scale-down rate per decision.
    // and never below what either window asks for beyond the band.
    desired = Math.max(desired, Math.floor(input.replicas / config.maxScaleDownRate), stableDesire, panicDesireBeyondBand);
    reason = cpuLeads ? 'cpu' : 'stable';
  }

  // What is coming needs no more asking while it starts, and a draining queue is no new demand.
  if (desired > input.replicas && panic && input.concurrency.falling) desired = input.replicas;
  if (panic) state.panicFloor = Math.max(state.panicFloor, desired);

  desired = Math.min(Math.max(desired, Math.floor(ready / config.maxScaleDownRate)), Math.ceil(config.maxScaleUpRate * ready));
  // Restarted: no shrinking before one stable window of data.
  if (input.nowMs - state.startedAtMs < config.stableWindowSeconds * 1000) desired = Math.max(desired, input.replicas);
  if (config.scaleDownDelaySeconds > 0) {
    state.delayWindow.push({ atMs: input.nowMs, desired });
    desired = Math.max(...state.delayWindow.map((entry) => entry.desired));
  }
  const bounded = Math.min(Math.max(desired, config.minReplicas), config.maxReplicas);
  if (bounded !== desired) reason = 'bounds';
  return { decision: { desired: bounded, reason, panic, stableDesire, panicDesire }, state };
}
