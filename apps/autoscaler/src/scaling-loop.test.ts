import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@kublambda/logging';
import { DEFAULT_SCALING } from './scaling-defaults.ts';
import { ScalingLoop, type ScaleEventReason, type ScalingLoopDeps } from './scaling-loop.ts';
import type { RunnerEndpoint } from './ready-endpoints.ts';
import type { RunnerSample } from './runner-metrics.ts';

const logger = createLogger('autoscaler-test', 'error');

function harness(options: { replicas: number; pods: string[]; writeFails?: boolean }) {
  const samples = new Map<string, RunnerSample | undefined>();
  const writes: Array<{ replicas: number; resourceVersion: string | undefined }> = [];
  const events: Array<{ reason: ScaleEventReason; note: string }> = [];
  const scraped: string[] = [];
  let replicas = options.replicas;
  let pods = options.pods;
  const deps: ScalingLoopDeps = {
    scaling: { ...DEFAULT_SCALING, targetConcurrencyPerPod: 10, stableWindowSeconds: 10, panicWindowSeconds: 2, maxReplicas: 20 },
    readyEndpoints: (): RunnerEndpoint[] => pods.map((pod, i) => ({ pod, address: `127.1.0.${i + 2}`, port: 8080 })),
    scrape: async (endpoint) => {
      scraped.push(endpoint.address);
      return samples.get(endpoint.pod);
    },
    scale: {
      read: async () => ({ replicas, resourceVersion: `v${replicas}` }),
      write: async (next, resourceVersion) => {
        if (options.writeFails) throw new Error('HTTP 409: the object has been modified');
        writes.push({ replicas: next, resourceVersion });
        replicas = next;
      },
    },
    recordEvent: async (reason, note) => void events.push({ reason, note }),
    metrics: { recordScrapeRound: () => undefined, recordDecision: () => undefined, recordScaleChange: () => undefined },
    logger,
  };
  return { deps, samples, writes, events, scraped, setPods: (next: string[]) => (pods = next) };
}

describe('ScalingLoop', () => {
  it('scrapes the Ready runners, scales up through the scale subresource and records why', async () => {
    const h = harness({ replicas: 2, pods: ['runner-a', 'runner-b'] });
    const loop = new ScalingLoop(h.deps, 0);
    // 40 served at once on each runner (no queue): demand 80, 10 per pod -> 8 pods, panic (8 >= 2 x 2).
    for (let second = 1; second <= 3; second++) {
      h.samples.set('runner-a', { inFlight: 40, waiting: 0, answered: 400 * second, cpuSeconds: second });
      h.samples.set('runner-b', { inFlight: 40, waiting: 0, answered: 400 * second, cpuSeconds: second });
      await loop.scrapeRound(second * 1000);
    }
    expect(h.scraped.slice(0, 2)).toEqual(['127.1.0.2', '127.1.0.3']);
    const decision = await loop.decide(3000);
    expect(decision).toMatchObject({ desired: 8, reason: 'panic', panic: true });
    expect(h.writes).toEqual([{ replicas: 8, resourceVersion: 'v2' }]);
    expect(h.events).toEqual([{ reason: 'Panic', note: expect.stringMatching(/^Scaled from 2 to 8 replicas \(Panic, in panic mode\): stable desire 8, panic desire 8, ready pods 2, demand 80/) }]);
  });

  it('writes nothing while the decision equals the replicas, or while there is no data', async () => {
    const h = harness({ replicas: 3, pods: ['runner-a'] });
    const loop = new ScalingLoop(h.deps, 0);
    expect(await loop.decide(1000)).toMatchObject({ reason: 'no-data', desired: 3 });
    h.samples.set('runner-a', undefined);
    await loop.scrapeRound(2000);
    expect(await loop.decide(2000)).toMatchObject({ reason: 'no-data', desired: 3 });
    h.samples.set('runner-a', { inFlight: 25, waiting: 0, answered: 0, cpuSeconds: 0 });
    await loop.scrapeRound(3000);
    expect((await loop.decide(3000)).desired).toBe(3);
    expect(h.writes).toEqual([]);
    expect(h.events).toEqual([]);
  });

  it('does not shrink the pool in its first stable window, then does', async () => {
    const h = harness({ replicas: 6, pods: ['runner-a', 'runner-b'] });
    const loop = new ScalingLoop(h.deps, 0);
    for (let second = 1; second <= 14; second++) {
      h.samples.set('runner-a', { inFlight: 1, waiting: 0, answered: 10 * second, cpuSeconds: 0 });
      h.samples.set('runner-b', { inFlight: 1, waiting: 0, answered: 10 * second, cpuSeconds: 0 });
      await loop.scrapeRound(second * 1000);
      if (second % 2 === 0) await loop.decide(second * 1000);
      if (second < 10) expect(h.writes).toEqual([]);
    }
    expect(h.writes[0]).toEqual({ replicas: 3, resourceVersion: 'v6' });
    expect(h.events[0]?.reason).toBe('Stable');
  });

  it('says what it tried when the write fails', async () => {
    const h = harness({ replicas: 1, pods: ['runner-a'], writeFails: true });
    const loop = new ScalingLoop(h.deps, 0);
    h.samples.set('runner-a', { inFlight: 50, waiting: 0, answered: 0, cpuSeconds: 0 });
    await loop.scrapeRound(1000);
    await expect(loop.decide(1000)).rejects.toThrow('scaling the runner Deployment from 1 to 5 replicas');
    expect(h.events).toEqual([]);
  });
});
