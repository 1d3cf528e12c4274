// Replays the load traces through the autoscaler deciders and prints, per trace: seconds until
// the replicas met a rise of the need, direction changes, peak over-provisioning (most replicas
// over the highest need), replica-seconds over the ideal, the largest drop in one decision, and
// seconds with Ready capacity below the demand. Two deciders on the same traces: Kublambda's
// (apps/autoscaler decide-scale.ts, fed by pool-windows.ts) and a port of plain KPA.
//   npm run sim:autoscaler
import { DEFAULT_SCALING } from '../../apps/autoscaler/src/scaling-defaults.ts';
import { kublambdaAutoscaler } from './kublambda-autoscaler.ts';
import { KNATIVE_DEFAULTS } from './plain-kpa.ts';
import { plainKpaAutoscaler } from './plain-kpa-autoscaler.ts';
import { simulate, type PoolSettings } from './simulate.ts';
import { loadTraces } from './traces.ts';

const settings: PoolSettings = { targetPerPod: KNATIVE_DEFAULTS.targetPerPod, podCapacity: 100, decisionSeconds: 2, minReplicas: 1, requestTimeoutSeconds: 30, serviceSeconds: 1 };
const deciders = [
  { name: 'plain KPA', create: () => plainKpaAutoscaler(KNATIVE_DEFAULTS, 6) },
  { name: 'kublambda', create: () => kublambdaAutoscaler(DEFAULT_SCALING) },
];

const header = ['trace', 'decider', 'reach s', 'turns', 'peak/need', 'rep-s/ideal', 'worst drop', 's short'];
const rows: string[][] = [];
for (const trace of loadTraces()) {
  for (const decider of deciders) {
    const result = simulate(trace, settings, decider.create());
    rows.push([
      trace.name,
      decider.name,
      String(result.secondsToReach),
      String(result.directionChanges),
      result.peakOverProvisioning.toFixed(2),
      result.replicaSecondsOverIdeal.toFixed(2),
      `${result.worstDropPerDecision.toFixed(2)}x`,
      String(result.secondsShort),
    ]);
  }
}
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
for (const row of [header, ...rows]) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
