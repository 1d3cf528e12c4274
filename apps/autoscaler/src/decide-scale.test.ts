import { describe, expect, it } from '@jest/globals';
import { decideScale, initialScalingState, type ScalingInput, type ScalingState } from './decide-scale.ts';
import { DEFAULT_SCALING } from './scaling-defaults.ts';

const config = { ...DEFAULT_SCALING, targetCpuPerPod: 0.7 };
/** Long after the start: the restart guard is out of the way. */
const LATER = 10 * 60_000;

function input(overrides: Partial<ScalingInput> & { stable?: number; panic?: number; recent?: number; cpuStable?: number }): ScalingInput {
  const { stable, panic, recent, cpuStable, ...rest } = overrides;
  return {
    nowMs: LATER,
    readyPods: 10,
    replicas: 10,
    concurrency: { stable, panic: panic ?? stable, recent: recent ?? panic ?? stable, falling: false },
    cpu: { stable: cpuStable, panic: cpuStable },
    ...rest,
  };
}

const settled = (): ScalingState => initialScalingState(0);

describe('decideScale', () => {
  it.each([
    ['keeps the scale without data', input({ stable: undefined }), 10, 'no-data'],
    ['scales up to the stable desire', input({ stable: 840 }), 12, 'stable'],
    ['keeps the scale within the hysteresis band below', input({ stable: 640 }), 10, 'stable'],
    ['scales down when the load fits fewer pods with room to spare', input({ stable: 560 }), 9, 'stable'],
    ['halves at most per decision', input({ stable: 70 }), 5, 'stable'],
    ['raises on the panic window beyond the band', input({ stable: 700, panic: 900 }), 12, 'panic'],
    ['not on the panic window within the band', input({ stable: 700, panic: 760 }), 10, 'stable'],
    ['takes the CPU desire when it is larger', input({ stable: 700, cpuStable: 10.4 }), 15, 'cpu'],
    ['panics on a burst in the last seconds, sized by it', input({ readyPods: 2, replicas: 2, stable: 140, panic: 500, recent: 1400 }), 20, 'panic'],
    ['stays within min and max replicas', input({ stable: 700_000 }), 1000, 'bounds'],
  ])('%s', (_name, scalingInput, desired, reason) => {
    const { decision } = decideScale(config, scalingInput, settled());
    expect({ desired: decision.desired, reason: decision.reason }).toEqual({ desired, reason });
  });

  it('does not shrink the pool before one stable window after a start', () => {
    const { decision } = decideScale(config, input({ nowMs: 30_000, stable: 70 }), initialScalingState(0));
    expect(decision.desired).toBe(10);
  });

  it('never scales down in panic, then leaves it stepping down at most by the scale-down rate', () => {
    let state = settled();
    const step = (nowMs: number, readyPods: number, replicas: number, stable: number, panic: number) => {
      const next = decideScale(config, input({ nowMs, readyPods, replicas, stable, panic, recent: panic }), state);
      state = next.state;
      return next.decision;
    };
    expect(step(LATER, 2, 2, 140, 1400)).toMatchObject({ desired: 20, panic: true });
    // The burst is over at once; panic holds the pool for one stable window.
    expect(step(LATER + 2_000, 20, 20, 300, 140)).toMatchObject({ desired: 20, panic: true });
    expect(step(LATER + 60_000, 20, 20, 300, 140)).toMatchObject({ desired: 20, panic: true });
    const after = step(LATER + 62_000, 20, 20, 140, 140);
    expect(after).toMatchObject({ desired: 10, panic: false });
    expect(step(LATER + 64_000, 10, 10, 140, 140)).toMatchObject({ desired: 5, panic: false });
  });

  it('does not raise the pool in panic while the panic window is falling (a queue draining)', () => {
    const panicking = decideScale(config, input({ readyPods: 2, replicas: 2, stable: 140, panic: 1400 }), settled()).state;
    const falling = input({ nowMs: LATER + 2_000, readyPods: 20, replicas: 20, stable: 400, panic: 2000 });
    falling.concurrency.falling = true;
    expect(decideScale(config, falling, panicking).decision.desired).toBe(20);
  });

  it('delays scaling down by the sliding maximum of the scale-down delay', () => {
    const delayed = { ...config, scaleDownDelaySeconds: 10 };
    const first = decideScale(delayed, input({ stable: 700 }), settled());
    const second = decideScale(delayed, input({ nowMs: LATER + 2_000, stable: 350 }), first.state);
    expect(second.decision.desired).toBe(10);
    const third = decideScale(delayed, input({ nowMs: LATER + 12_000, replicas: 10, stable: 350 }), second.state);
    expect(third.decision.desired).toBe(6);
  });
});
