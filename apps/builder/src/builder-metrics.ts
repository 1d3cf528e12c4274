import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BuildJobResult, ImageJobResult } from '@kublambda/build-queue';

/** What the builder builds: lambda assets, and container images of them. */
export type BuildKind = 'asset' | 'image';
/** succeeded: an artifact or a pushed image; failed: a permanent problem such as the source at fault (a result, not retried); error: the attempt threw (retried). */
export type BuildResult = 'succeeded' | 'failed' | 'error';

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export interface BuilderMetricSources {
  /** The build queue's job counts by state, read on every scrape; absent: no queue depth is reported. */
  queueCounts?: () => Promise<Partial<Record<QueueState, number>>>;
}

/** What the builder reports on /metrics. */
export function createBuilderMetrics(sources: BuilderMetricSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const builds = new Counter({
    name: 'kublambda_builder_builds_total',
    help: 'Build attempts finished by this builder, by kind (asset, image) and result (succeeded; failed: a permanent problem, such as the source at fault; error: retried).',
    labelNames: ['kind', 'result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'kublambda_builder_build_duration_seconds',
    help: 'How long a build attempt took, from taking the job to its outcome.',
    labelNames: ['kind'],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  const { queueCounts } = sources;
  new Gauge({
    name: 'kublambda_builder_queue_depth',
    help: 'Jobs in the build queue by state, as Redis holds them at scrape time (all builders\' jobs, not only this one\'s).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      if (!queueCounts) return;
      const counts = await queueCounts();
      for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  return {
    registry,
    recordBuild(kind: BuildKind, result: BuildResult, seconds: number) {
      builds.inc({ kind, result });
      duration.observe({ kind }, seconds);
    },
  };
}

export type BuilderMetrics = ReturnType<typeof createBuilderMetrics>;

/** Runs one build attempt and records its result and duration; the attempt's outcome or error passes through. */
export async function measureBuild<R extends BuildJobResult | ImageJobResult>(metrics: Pick<BuilderMetrics, 'recordBuild'>, kind: BuildKind, build: () => Promise<R>, now = () => performance.now()): Promise<R> {
  const started = now();
  const seconds = () => (now() - started) / 1000;
  try {
    const result = await build();
    metrics.recordBuild(kind, result.outcome !== 'failed' ? 'succeeded' : 'failed', seconds());
    return result;
  } catch (error) {
    metrics.recordBuild(kind, 'error', seconds());
    throw error;
  }
}
