import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '@kublambda/logging';
import { TerminalError, WorkQueue, backoffDelay, startReconcileWorkers } from './index.ts';

const quiet = createLogger('test', 'silent');

describe('backoffDelay', () => {
  it.each([
    [1, 5],
    [2, 10],
    [5, 80],
    [30, 960_000],
  ])('after %i failures waits %i ms (5 ms doubling, capped at 16 minutes)', (failures, delay) => {
    expect(backoffDelay(failures, 5, 16 * 60_000)).toBe(delay);
  });
});

describe('WorkQueue', () => {
  it('holds a waiting key once however often it is added', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(await queue.take()).toBe('a');
    expect(await queue.take()).toBe('b');
  });

  it('hands a key to one worker at a time and brings it back if added meanwhile', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const key = await queue.take();
    queue.add('a');
    queue.add('a');
    expect(queue.length).toBe(0);
    queue.done(key!);
    expect(queue.length).toBe(1);
    expect(await queue.take()).toBe('a');
  });

  it('delays rate-limited keys exponentially until forgotten', () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 35 });
    expect([queue.addRateLimited('a'), queue.addRateLimited('a'), queue.addRateLimited('a'), queue.addRateLimited('a')]).toEqual([10, 20, 35, 35]);
    expect(queue.failures('a')).toBe(4);
    queue.forget('a');
    expect(queue.addRateLimited('a')).toBe(10);
    queue.shutDown();
  });

  it('caps one call\'s delay below the queue\'s maximum when asked', () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 1_000 });
    expect([queue.addRateLimited('a', 25), queue.addRateLimited('a', 25), queue.addRateLimited('a', 25), queue.addRateLimited('a')]).toEqual([10, 20, 25, 80]);
    queue.shutDown();
  });

  it('keeps the earlier of two delayed adds', async () => {
    const queue = new WorkQueue();
    queue.addAfter('a', 10_000);
    queue.addAfter('a', 20);
    const started = Date.now();
    expect(await queue.take()).toBe('a');
    expect(Date.now() - started).toBeLessThan(5_000);
    queue.shutDown();
  });

  it('releases waiting takers on shutdown', async () => {
    const queue = new WorkQueue();
    const taken = queue.take();
    queue.shutDown();
    expect(await taken).toBeUndefined();
    queue.add('late');
    expect(await queue.take()).toBeUndefined();
  });
});

describe('startReconcileWorkers', () => {
  it('never reconciles one key concurrently', async () => {
    const queue = new WorkQueue();
    const inFlight = new Map<string, number>();
    let maxInFlightPerKey = 0;
    let maxInFlight = 0;
    const workers = startReconcileWorkers({
      queue,
      concurrency: 4,
      logger: quiet,
      reconcile: async (key) => {
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
        maxInFlightPerKey = Math.max(maxInFlightPerKey, inFlight.get(key)!);
        maxInFlight = Math.max(maxInFlight, [...inFlight.values()].reduce((a, b) => a + b, 0));
        await sleep(5);
        inFlight.set(key, inFlight.get(key)! - 1);
      },
    });
    for (let round = 0; round < 10; round++) {
      for (const key of ['a', 'b', 'c', 'd']) queue.add(key);
      await sleep(2);
    }
    await sleep(50);
    await workers.stop();
    expect(maxInFlightPerKey).toBe(1);
    expect(maxInFlight).toBeGreaterThan(1);
  });

  it('retries a failing key with backoff until it succeeds, then forgets its failures', async () => {
    const queue = new WorkQueue({ baseDelayMs: 1 });
    let calls = 0;
    const workers = startReconcileWorkers({
      queue,
      concurrency: 2,
      logger: quiet,
      reconcile: async () => {
        calls++;
        if (calls < 3) throw new Error('transient', { cause: new Error('redis unavailable') });
      },
    });
    queue.add('flaky');
    await sleep(100);
    await workers.stop();
    expect(calls).toBe(3);
    expect(queue.failures('flaky')).toBe(0);
  });

  it('does not retry terminal errors, and requeues when asked to poll', async () => {
    const queue = new WorkQueue({ baseDelayMs: 1 });
    const calls: string[] = [];
    const workers = startReconcileWorkers({
      queue,
      concurrency: 2,
      logger: quiet,
      reconcile: async (key) => {
        calls.push(key);
        if (key === 'bad') throw new TerminalError('spec is wrong');
        if (calls.filter((k) => k === 'poll').length < 3) return { requeueAfterMs: 5 };
      },
    });
    queue.add('bad');
    queue.add('poll');
    await sleep(150);
    await workers.stop();
    expect(calls.filter((k) => k === 'bad')).toHaveLength(1);
    expect(calls.filter((k) => k === 'poll')).toHaveLength(3);
  });

  it('backs off a key that waits on something, growing the delay until a pass no longer waits', async () => {
    const queue = new WorkQueue({ baseDelayMs: 1 });
    const failuresSeen: number[] = [];
    const workers = startReconcileWorkers({
      queue,
      concurrency: 1,
      logger: quiet,
      reconcile: async (key) => {
        failuresSeen.push(queue.failures(key));
        if (failuresSeen.length < 4) return { backoffUpToMs: 5 };
      },
    });
    queue.add('waiting');
    await sleep(150);
    await workers.stop();
    expect(failuresSeen).toEqual([0, 1, 2, 3]);
    expect(queue.failures('waiting')).toBe(0);
  });

  it('lets in-flight reconciles finish on stop', async () => {
    const queue = new WorkQueue();
    let finished = false;
    const workers = startReconcileWorkers({ queue, concurrency: 1, logger: quiet, reconcile: async () => { await sleep(50); finished = true; } });
    queue.add('a');
    await sleep(5);
    await workers.stop();
    expect(finished).toBe(true);
  });
});
