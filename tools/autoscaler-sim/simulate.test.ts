import { describe, expect, it } from '@jest/globals';
import { DEFAULT_SCALING } from '../../apps/autoscaler/src/scaling-defaults.ts';
import { kublambdaAutoscaler } from './kublambda-autoscaler.ts';
import { createPlainKpa, KNATIVE_DEFAULTS } from './plain-kpa.ts';
import { plainKpaAutoscaler } from './plain-kpa-autoscaler.ts';
import { simulate, type PoolSettings, type SimulatedAutoscaler } from './simulate.ts';
import { loadTraces } from './traces.ts';

const settings: PoolSettings = { targetPerPod: 70, podCapacity: 100, decisionSeconds: 2, minReplicas: 1, requestTimeoutSeconds: 30, serviceSeconds: 1 };

describe('plain KPA', () => {
  it.each([
    ['stable: ceil(average / target per pod)', 6, 700, 700, 10, false],
    ['scaling down at most to half the ready pods', 10, 70, 70, 5, false],
    ['panic when the panic desire reaches twice the ready pods', 2, 140, 280, 4, true],
  ])('%s', (_name, readyPods, stable, panicValue, desired, panic) => {
    const decide = createPlainKpa(KNATIVE_DEFAULTS);
    expect(decide({ nowMs: 0, readyPods, stableConcurrency: stable, panicConcurrency: panicValue })).toEqual({ desired, panic });
  });

  it('keeps the scale without data, never scales down while panicking, and leaves panic one stable window after its last over-threshold decision', () => {
    const decide = createPlainKpa(KNATIVE_DEFAULTS);
    expect(decide({ nowMs: 0, readyPods: 2, stableConcurrency: undefined, panicConcurrency: undefined })).toBeUndefined();
    expect(decide({ nowMs: 0, readyPods: 2, stableConcurrency: 140, panicConcurrency: 700 })).toEqual({ desired: 10, panic: true });
    expect(decide({ nowMs: 2_000, readyPods: 10, stableConcurrency: 140, panicConcurrency: 140 })).toEqual({ desired: 10, panic: true });
    expect(decide({ nowMs: 60_000, readyPods: 10, stableConcurrency: 140, panicConcurrency: 140 })).toEqual({ desired: 10, panic: true });
    expect(decide({ nowMs: 60_002, readyPods: 10, stableConcurrency: 140, panicConcurrency: 140 })).toEqual({ desired: 5, panic: false });
  });

  it('delays scaling down by the sliding maximum of the scale-down delay', () => {
    const decide = createPlainKpa({ ...KNATIVE_DEFAULTS, scaleDownDelaySeconds: 10 });
    expect(decide({ nowMs: 0, readyPods: 4, stableConcurrency: 280, panicConcurrency: 280 })!.desired).toBe(4);
    expect(decide({ nowMs: 2_000, readyPods: 4, stableConcurrency: 140, panicConcurrency: 140 })!.desired).toBe(4);
    expect(decide({ nowMs: 10_000, readyPods: 4, stableConcurrency: 140, panicConcurrency: 140 })!.desired).toBe(2);
  });
});

describe('simulate', () => {
  /** Asks for exactly the need of the demand it was built for: the ideal. */
  const oracle = (demand: (second: number) => number): SimulatedAutoscaler => ({
    observe: () => {},
    decide: (nowMs) => Math.ceil(demand(nowMs / 1000 + 1) / settings.targetPerPod),
  });

  it('measures an autoscaler that follows the need one step ahead as ideal', () => {
    const demand = (second: number) => (second < 10 ? 140 : 700);
    const result = simulate({ name: 'step', seconds: 40, demand }, settings, oracle(demand));
    expect(result.directionChanges).toBe(0);
    expect(result.peakOverProvisioning).toBe(1);
    expect(result.worstDropPerDecision).toBe(1);
    expect(result.replicas.slice(0, 12)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 10, 10]);
  });

  it('counts direction changes, drops and seconds short of an autoscaler that flaps', () => {
    let flip = false;
    const flapping: SimulatedAutoscaler = { observe: () => {}, decide: () => ((flip = !flip) ? 8 : 4) };
    const result = simulate({ name: 'flat', seconds: 12, demand: () => 420 }, settings, flapping);
    // Decisions at 2, 4, 6, 8, 10: 8, 4, 8, 4, 8 from 6 replicas.
    expect(result.directionChanges).toBe(4);
    expect(result.worstDropPerDecision).toBe(2);
    // 4 pods serve 400 of the 420 offered.
    expect(result.secondsShort).toBe(4);
  });

  it('makes new pods wait podStartSeconds, and replaces vanished ones', () => {
    const fixed: SimulatedAutoscaler = { observe: () => {}, decide: () => 4 };
    const result = simulate({ name: 'slow', seconds: 12, demand: () => 140, podStartSeconds: 5, vanish: { atSecond: 9, pods: 1 } }, settings, fixed);
    expect(result.replicas.slice(0, 4)).toEqual([2, 2, 4, 4]);
    // Asked for at second 2, created at second 3, Ready 5 s later; one killed at second 9 and started again.
    expect(result.ready).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 4, 3, 3, 3]);
  });
});

describe('the load traces through the deciders', () => {
  const results = (decider: 'kublambda' | 'plain KPA') =>
    new Map(
      loadTraces().map((trace) => [
        trace.name,
        simulate(trace, settings, decider === 'kublambda' ? kublambdaAutoscaler(DEFAULT_SCALING) : plainKpaAutoscaler(KNATIVE_DEFAULTS, 6)),
      ]),
    );

  it('kublambda: a 10x spike met within 4 s, no turns on noisy steady load, drops within the scale-down rate, slow pods not over-provisioned past 1.5x', () => {
    const ours = results('kublambda');
    expect(ours.get('10x spike for 60 s')!.secondsToReach).toBeLessThanOrEqual(4);
    expect(ours.get('noisy steady +-20%')!.directionChanges).toBe(0);
    for (const result of ours.values()) expect(result.worstDropPerDecision).toBeLessThanOrEqual(KNATIVE_DEFAULTS.maxScaleDownRate);
    expect(ours.get('10x spike, pods 10 s to Ready')!.peakOverProvisioning).toBeLessThanOrEqual(1.5);
    // A runner that stops answering its scrape never makes the pool shrink.
    const silent = ours.get('runner stops answering scrapes')!;
    expect(Math.min(...silent.replicas)).toBe(silent.replicas[0]);
  });

  it('plain KPA, for comparison: it turns on noisy load and over-provisions slow-starting pods', () => {
    const kpa = results('plain KPA');
    expect(kpa.get('noisy steady +-20%')!.directionChanges).toBeGreaterThan(0);
    expect(kpa.get('10x spike, pods 10 s to Ready')!.peakOverProvisioning).toBeGreaterThan(1.5);
  });
});
