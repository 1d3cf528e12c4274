import { describe, expect, it } from '@jest/globals';
import { PoolWindows, type RunnerScrape } from './pool-windows.ts';

const sample = (inFlight: number, waiting: number, answered: number, cpuSeconds = 0) => ({ inFlight, waiting, answered, cpuSeconds });

describe('PoolWindows', () => {
  it('counts what is served plus the queue growth times the service time, not the queue itself', () => {
    const windows = new PoolWindows({ stableSeconds: 60, panicSeconds: 6 });
    // Two runners, each serving 100 at once with a 1 s service time, their queues growing by 50/s each.
    windows.record(1_000, [
      { pod: 'a', sample: sample(100, 0, 0) },
      { pod: 'b', sample: sample(100, 0, 0) },
    ]);
    windows.record(2_000, [
      { pod: 'a', sample: sample(150, 50, 100) },
      { pod: 'b', sample: sample(150, 50, 100) },
    ]);
    windows.record(3_000, [
      { pod: 'a', sample: sample(200, 100, 200) },
      { pod: 'b', sample: sample(200, 100, 200) },
    ]);
    // The demand is 300 a second (200 served, 100 more waiting); in flight it reads 400 and growing.
    expect(windows.averages(3_000).concurrency.recent).toBe(300);
  });

  it('takes off what a draining queue drains, and counts all in flight while it has no rate to weigh with', () => {
    const windows = new PoolWindows({ stableSeconds: 60, panicSeconds: 1 });
    windows.record(1_000, [{ pod: 'a', sample: sample(500, 400, 0) }]);
    expect(windows.averages(1_000).concurrency.panic).toBe(500);
    // 100 served at once with a 1 s service time, the queue down by 100 a second: no new demand.
    windows.record(2_000, [{ pod: 'a', sample: sample(400, 300, 100) }]);
    expect(windows.averages(2_000).concurrency.panic).toBe(0);
  });

  it('counts a runner whose scrape failed as busy as the busiest, or its own last value, never as idle', () => {
    const windows = new PoolWindows({ stableSeconds: 60, panicSeconds: 1 });
    const round = (nowMs: number, a: RunnerScrape['sample'], b: RunnerScrape['sample']) =>
      windows.record(nowMs, [
        { pod: 'a', sample: a },
        { pod: 'b', sample: b },
      ]);
    round(1_000, sample(10, 0, 0, 1), sample(90, 0, 0, 2));
    round(2_000, sample(10, 0, 10, 1.5), sample(90, 0, 90, 3));
    expect(windows.averages(2_000).concurrency.panic).toBe(100);
    expect(windows.averages(2_000).cpu.panic).toBe(1.5);
    // b stops answering: it counts as its last 90 (higher than the busiest now, 10).
    round(3_000, sample(10, 0, 20, 2), undefined);
    expect(windows.averages(3_000).concurrency.panic).toBe(100);
    expect(windows.averages(3_000).cpu.panic).toBe(1.5);
  });

  it('records nothing for a round where no runner answered and none was seen before', () => {
    const windows = new PoolWindows({ stableSeconds: 60, panicSeconds: 6 });
    windows.record(1_000, [{ pod: 'a', sample: undefined }]);
    expect(windows.averages(1_000).concurrency.stable).toBeUndefined();
  });
});
