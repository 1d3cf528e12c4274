import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ScalingDecision, ScalingInput } from './decide-scale.ts';

/** What the autoscaler reports on /metrics: its inputs and its decisions. */
export function createAutoscalerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const concurrency = gauge('kublambda_autoscaler_observed_concurrency', 'The runner pool\'s demand (requests served at once, queue growth included) averaged over the window (stable, panic).', ['window']);
  const cpu = gauge('kublambda_autoscaler_observed_cpu_cores', 'CPU cores the runner pool used, averaged over the window (stable, panic).', ['window']);
  const desire = gauge('kublambda_autoscaler_desired_pods', 'The pods each window asks for (stable, panic), before rates and bounds.', ['window']);
  const readyPods = gauge('kublambda_autoscaler_ready_pods', 'Runner pods Ready (ready endpoints of the runner Service).');
  const replicas = gauge('kublambda_autoscaler_current_replicas', 'The runner Deployment\'s replicas, read from its scale subresource at the last decision.');
  const desired = gauge('kublambda_autoscaler_desired_replicas', 'The replicas the last decision asked for.');
  const panic = gauge('kublambda_autoscaler_panic_mode', '1 while in panic mode, else 0.');
  const leader = gauge('kublambda_autoscaler_leader', '1 while this replica holds the lease and scales, else 0.');
  const scrapeFailures = new Counter({ name: 'kublambda_autoscaler_scrape_failures_total', help: 'Runner scrapes that failed (refused, timed out, unreadable).', registers: [registry] });
  const decisions = new Counter({ name: 'kublambda_autoscaler_decisions_total', help: 'Scaling decisions made while leading (changes or not).', registers: [registry] });
  const scaleChanges = new Counter({ name: 'kublambda_autoscaler_scale_changes_total', help: 'Changes of the runner Deployment\'s replicas, by reason.', labelNames: ['reason'], registers: [registry] });
  return {
    registry,
    recordScrapeRound(ready: number, failures: number) {
      readyPods.set(ready);
      scrapeFailures.inc(failures);
    },
    recordDecision(input: ScalingInput, decision: ScalingDecision) {
      for (const window of ['stable', 'panic'] as const) {
        const observed = input.concurrency[window];
        if (observed !== undefined) concurrency.set({ window }, observed);
        const cores = input.cpu[window];
        if (cores !== undefined) cpu.set({ window }, cores);
      }
      desire.set({ window: 'stable' }, decision.stableDesire);
      desire.set({ window: 'panic' }, decision.panicDesire);
      replicas.set(input.replicas);
      desired.set(decision.desired);
      panic.set(decision.panic ? 1 : 0);
      decisions.inc();
    },
    recordScaleChange(reason: string) {
      scaleChanges.inc({ reason });
    },
    setLeader(leading: boolean) {
      leader.set(leading ? 1 : 0);
    },
  };
}

export type AutoscalerMetrics = ReturnType<typeof createAutoscalerMetrics>;
