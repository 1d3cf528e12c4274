import { describe, expect, it } from '@jest/globals';
import { SecondBuckets } from './second-buckets.ts';

describe('SecondBuckets', () => {
  it('sums the records of one second and averages over a partial window from the first record', () => {
    const buckets = new SecondBuckets(60);
    buckets.record(10_000, 3);
    buckets.record(10_500, 2);
    buckets.record(11_200, 10);
    // Seconds 10 and 11: (5 + 10) / 2.
    expect(buckets.windowAverage(11_900, 60)).toBe(7.5);
    expect(buckets.windowAverage(11_900, 1)).toBe(10);
  });

  it.each([
    ['a gap inside the data counts as zero', [0, 2], 2_000, 3, (4 + 0 + 4) / 3],
    ['seconds after the last record are left out', [0, 1], 4_000, 5, 4],
    ['a window with no record has no average', [0], 10_000, 5, undefined],
  ])('%s', (_name, seconds, nowMs, window, expected) => {
    const buckets = new SecondBuckets(60);
    for (const second of seconds) buckets.record(second * 1000, 4);
    expect(buckets.windowAverage(nowMs, window)).toBe(expected);
  });

  it('forgets what is older than it retains, and starts afresh after a gap longer than that', () => {
    const buckets = new SecondBuckets(5);
    for (let second = 0; second < 10; second++) buckets.record(second * 1000, second);
    expect(buckets.windowAverage(9_000, 5)).toBe((5 + 6 + 7 + 8 + 9) / 5);
    buckets.record(30_000, 100);
    expect(buckets.windowAverage(30_000, 5)).toBe(100);
  });
});
