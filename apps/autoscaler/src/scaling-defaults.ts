import type { ScalingConfig } from './decide-scale.ts';

/** Knative's KPA defaults where they carry over (target 100 x 0.7, windows 60 s and 6 s, panic at 2x, rates 1000x and 2x). */
export const DEFAULT_SCALING: ScalingConfig = {
  targetConcurrencyPerPod: 70,
  targetCpuPerPod: undefined,
  stableWindowSeconds: 60,
  panicWindowSeconds: 6,
  panicThreshold: 2,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownHysteresis: 0.1,
  scaleDownDelaySeconds: 0,
  podStartTimeoutSeconds: 60,
  minReplicas: 1,
  maxReplicas: 1000,
};
