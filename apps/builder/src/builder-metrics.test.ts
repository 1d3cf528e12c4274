import { describe, expect, it } from '@jest/globals';
import type { BuildJobResult } from '@kublambda/build-queue';
import { createBuilderMetrics, measureBuild, type BuildResult } from './builder-metrics.ts';

const built: BuildJobResult = { outcome: 'built', artifact: { digest: 'sha256:x', size: 1 }, warnings: [] };
const compileFailed: BuildJobResult = { outcome: 'failed', reason: 'CompileFailed', message: 'index.ts:1:1: nope' };

describe('measureBuild', () => {
  it.each<[BuildResult, () => Promise<BuildJobResult>]>([
    ['succeeded', () => Promise.resolve(built)],
    ['failed', () => Promise.resolve(compileFailed)],
    ['error', () => Promise.reject(new Error('S3 is down'))],
  ])('records a %s build with its duration', async (result, build) => {
    const recorded: unknown[] = [];
    const clock = [1_000, 3_500];
    const outcome = measureBuild({ recordBuild: (...args) => void recorded.push(args) }, 'asset', build, () => clock.shift()!);
    if (result === 'error') await expect(outcome).rejects.toThrow('S3 is down');
    else await expect(outcome).resolves.toEqual(await build());
    expect(recorded).toEqual([['asset', result, 2.5]]);
  });
});

describe('createBuilderMetrics', () => {
  it('reads the queue depth on every scrape', async () => {
    let waiting = 3;
    const metrics = createBuilderMetrics({ queueCounts: async () => ({ waiting, active: 1 }) });
    metrics.recordBuild('asset', 'succeeded', 0.2);
    let text = await metrics.registry.metrics();
    expect(text).toContain('kublambda_builder_builds_total{kind="asset",result="succeeded"} 1');
    expect(text).toContain('kublambda_builder_build_duration_seconds_count{kind="asset"} 1');
    expect(text).toContain('kublambda_builder_queue_depth{state="waiting"} 3');
    expect(text).toContain('kublambda_builder_queue_depth{state="active"} 1');
    expect(text).toContain('kublambda_builder_queue_depth{state="completed"} 0');
    waiting = 0;
    text = await metrics.registry.metrics();
    expect(text).toContain('kublambda_builder_queue_depth{state="waiting"} 0');
  });

  it('reports no queue depth without a queue', async () => {
    expect(await createBuilderMetrics().registry.metrics()).not.toContain('kublambda_builder_queue_depth{');
  });
});
