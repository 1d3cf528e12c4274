// The autoscaler's loop, apart from Kubernetes and HTTP: a scrape round of the Ready runners
// into the pool windows every second, a decision every two, a changed decision written
// through the Deployment's scale subresource with an Event saying why. Only the leader runs it;
// a new leader starts afresh (initialScalingState), so it never shrinks the pool in its first
// stable window.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import type { AutoscalerMetrics } from './autoscaler-metrics.ts';
import { decideScale, initialScalingState, type ScalingConfig, type ScalingDecision, type ScalingReason, type ScalingState } from './decide-scale.ts';
import { PoolWindows } from './pool-windows.ts';
import type { RunnerEndpoint } from './ready-endpoints.ts';
import type { RunnerSample } from './runner-metrics.ts';

/** The runner Deployment's scale subresource. */
export interface RunnerScale {
  read(): Promise<{ replicas: number; resourceVersion: string | undefined }>;
  /** Replaces spec.replicas; with the resourceVersion read, so a change by someone else meanwhile is a conflict, not overwritten. */
  write(replicas: number, resourceVersion: string | undefined): Promise<void>;
}

export type ScaleEventReason = 'Stable' | 'Panic' | 'CPU' | 'Bounds';

export interface ScalingLoopDeps {
  scaling: ScalingConfig;
  readyEndpoints: () => RunnerEndpoint[];
  scrape: (endpoint: RunnerEndpoint) => Promise<RunnerSample | undefined>;
  scale: RunnerScale;
  /** A Kubernetes Event on the Deployment; failing to record one does not fail the change. */
  recordEvent: (reason: ScaleEventReason, note: string) => Promise<void>;
  metrics: Pick<AutoscalerMetrics, 'recordScrapeRound' | 'recordDecision' | 'recordScaleChange'>;
  logger: Logger;
}

const EVENT_REASONS: Record<Exclude<ScalingReason, 'no-data'>, ScaleEventReason> = { stable: 'Stable', panic: 'Panic', cpu: 'CPU', bounds: 'Bounds' };

export class ScalingLoop {
  readonly #deps: ScalingLoopDeps;
  readonly #windows: PoolWindows;
  #state: ScalingState;
  #readyPods = 0;

  constructor(deps: ScalingLoopDeps, startedAtMs: number) {
    this.#deps = deps;
    this.#windows = new PoolWindows({ stableSeconds: deps.scaling.stableWindowSeconds, panicSeconds: deps.scaling.panicWindowSeconds });
    this.#state = initialScalingState(startedAtMs);
  }

  /** Scrapes every Ready runner at once and records the round at nowMs. */
  async scrapeRound(nowMs: number): Promise<void> {
    const endpoints = this.#deps.readyEndpoints();
    const scrapes = await Promise.all(endpoints.map(async (endpoint) => ({ pod: endpoint.pod, sample: await this.#deps.scrape(endpoint) })));
    this.#readyPods = endpoints.length;
    this.#windows.record(nowMs, scrapes);
    this.#deps.metrics.recordScrapeRound(endpoints.length, scrapes.filter((scrape) => !scrape.sample).length);
  }

  /** Decides from the windows and the replicas now; a changed decision is applied and announced. */
  async decide(nowMs: number): Promise<ScalingDecision> {
    const { scale, logger } = this.#deps;
    const current = await scale.read().catch((error: unknown) => {
      throw new Error('reading the runner Deployment\'s scale', { cause: error });
    });
    const input = { nowMs, readyPods: this.#readyPods, replicas: current.replicas, ...this.#windows.averages(nowMs) };
    const { decision, state } = decideScale(this.#deps.scaling, input, this.#state);
    this.#state = state;
    this.#deps.metrics.recordDecision(input, decision);
    logger.debug('decided', { replicas: current.replicas, readyPods: input.readyPods, concurrency: input.concurrency, cpu: input.cpu, decision });
    if (decision.desired === current.replicas || decision.reason === 'no-data') return decision;

    const reason = EVENT_REASONS[decision.reason];
    try {
      await scale.write(decision.desired, current.resourceVersion);
    } catch (error) {
      throw new Error(`scaling the runner Deployment from ${current.replicas} to ${decision.desired} replicas`, { cause: error });
    }
    this.#deps.metrics.recordScaleChange(reason);
    const note =
      `Scaled from ${current.replicas} to ${decision.desired} replicas (${reason}${decision.panic ? ', in panic mode' : ''}): ` +
      `stable desire ${decision.stableDesire}, panic desire ${decision.panicDesire}, ready pods ${input.readyPods}, ` +
      `demand ${round(input.concurrency.stable)} (stable window) and ${round(input.concurrency.panic)} (panic window)` +
      (input.cpu.stable !== undefined && this.#deps.scaling.targetCpuPerPod !== undefined ? `, CPU ${round(input.cpu.stable)} cores (stable window)` : '');
    logger.info('scaled', {
      from: current.replicas,
      to: decision.desired,
      reason,
      panic: decision.panic,
      stableDesire: decision.stableDesire,
      panicDesire: decision.panicDesire,
      readyPods: input.readyPods,
      concurrency: input.concurrency,
      cpu: input.cpu,
    });
    await this.#deps.recordEvent(reason, note).catch((error: unknown) => logger.warn('could not record the scaling event', { reason, error: describeError(error) }));
    return decision;
  }
}

function round(value: number | undefined): string {
  return value === undefined ? 'unknown' : String(Math.round(value * 100) / 100);
}

export interface ScalingLoopTiming {
  scrapeIntervalMs: number;
  decisionIntervalMs: number;
}

/**
 * Runs the loop until signal aborts: rounds at whole multiples of the scrape interval (each
 * round falls into a second of its own and no second is skipped by timer drift), a
 * decision after the round once the decision interval has passed. A failed decision is logged
 * and the next one tries again.
 */
export async function runScalingLoop(loop: ScalingLoop, timing: ScalingLoopTiming, logger: Logger, signal: AbortSignal): Promise<void> {
  let lastDecisionMs = -Infinity;
  let lastSlot = -1;
  while (!signal.aborted) {
    const now = Date.now();
    // Just past the next multiple of the interval. A timer may fire a little before the wall
    // clock gets there: a round never runs twice in one slot (two records in one bucket).
    // Aborted: the loop ends.
    await sleep(timing.scrapeIntervalMs - (now % timing.scrapeIntervalMs) + ROUND_OFFSET_MS, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) break;
    const roundMs = Date.now();
    const slot = Math.floor(roundMs / timing.scrapeIntervalMs);
    if (slot === lastSlot) continue;
    lastSlot = slot;
    try {
      await loop.scrapeRound(roundMs);
      // Half an interval of slack: a round that fires a little early still decides.
      if (roundMs - lastDecisionMs >= timing.decisionIntervalMs - timing.scrapeIntervalMs / 2) {
        lastDecisionMs = roundMs;
        await loop.decide(roundMs);
      }
    } catch (error) {
      logger.warn('scaling decision failed', { error: describeError(error) });
    }
  }
}

const ROUND_OFFSET_MS = 5;
