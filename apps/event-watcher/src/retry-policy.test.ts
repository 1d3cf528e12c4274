import { describe, expect, it } from '@jest/globals';
import { backoffWithJitter, describeOutcome, isRetriableStatus, retryAfterMs, retryDelay, shouldRetry } from './retry-policy.ts';

describe('retry policy', () => {
  it.each([
    [500, true], [502, true], [503, true], [429, true], [408, true],
    [400, false], [401, false], [403, false], [404, false], [409, false], [422, false],
  ])('HTTP %i retriable: %s', (status, expected) => {
    expect(isRetriableStatus(status)).toBe(expected);
  });

  it('retries connection errors and timeouts', () => {
    expect(shouldRetry({ error: 'ECONNREFUSED' })).toBe(true);
    expect(shouldRetry({ status: 400, bodyExcerpt: '' })).toBe(false);
  });

  it('backs off exponentially up to the maximum, with full jitter', () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4, 5, 10].map((attempt) => backoffWithJitter(attempt, 100, 1_000, top))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffWithJitter(3, 100, 1_000, () => 0)).toBe(0);
  });

  it('honours Retry-After on 429 and 503, within the maximum', () => {
    const settings = { initialMs: 100, maxMs: 5_000 };
    expect(retryDelay(1, { status: 429, bodyExcerpt: '', retryAfter: '2' }, settings)).toBe(2_000);
    expect(retryDelay(1, { status: 503, bodyExcerpt: '', retryAfter: '3600' }, settings)).toBe(5_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryDelay(1, { status: 503, bodyExcerpt: '', retryAfter: 'Thu, 01 Jan 2026 00:00:03 GMT' }, settings, now)).toBe(3_000);
    // Retry-After on another status, or unreadable, falls back to backoff.
    expect(retryDelay(1, { status: 500, bodyExcerpt: '', retryAfter: '2' }, settings, now, () => 0.5)).toBe(50);
    expect(retryDelay(1, { status: 503, bodyExcerpt: '', retryAfter: 'soon' }, settings, now, () => 0.5)).toBe(50);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('0', 0)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4_000)).toBe(6_000);
    expect(retryAfterMs('x', 0)).toBeUndefined();
  });

  it('describes the last error for a dead letter', () => {
    expect(describeOutcome({ status: 500, bodyExcerpt: 'boom' })).toBe('HTTP 500: boom');
    expect(describeOutcome({ status: 400, bodyExcerpt: '' })).toBe('HTTP 400');
    expect(describeOutcome({ error: 'connect ECONNREFUSED 127.0.0.1:1' })).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });
});
