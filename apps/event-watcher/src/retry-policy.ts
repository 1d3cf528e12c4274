// When a failed delivery is tried again, and how long to wait: a pure policy, so the rules
// are tested with tables and the delivery loop only applies them.
import { describeOutcome, type AttemptOutcome } from '@kublambda/watch-triggers';

export { describeOutcome, type AttemptOutcome };

export interface RetrySettings {
  attempts: number;
  initialMs: number;
  maxMs: number;
}


/** 5xx, 429 and 408 are the receiver saying "not now"; another 4xx says the event itself is refused. */
export function isRetriableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

export function isSuccess(outcome: AttemptOutcome): boolean {
  return 'status' in outcome && outcome.status >= 200 && outcome.status < 300;
}

export function shouldRetry(outcome: AttemptOutcome): boolean {
  return 'error' in outcome || isRetriableStatus(outcome.status);
}

/**
 * Exponential backoff with full jitter (a random wait up to the exponential bound), so many
 * failing events do not all come back at the same moment. attempt counts from 1.
 */
export function backoffWithJitter(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const bound = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * bound);
}

/**
 * The wait before the next attempt: a 429 or 503 with Retry-After (seconds or an HTTP date) is
 * honoured, but never beyond maxMs, so one receiver cannot park an event for hours.
 */
export function retryDelay(attempt: number, outcome: AttemptOutcome, settings: Pick<RetrySettings, 'initialMs' | 'maxMs'>, now = Date.now(), random: () => number = Math.random): number {
  if ('status' in outcome && (outcome.status === 429 || outcome.status === 503) && outcome.retryAfter) {
    const asked = retryAfterMs(outcome.retryAfter, now);
    if (asked !== undefined) return Math.min(settings.maxMs, asked);
  }
  return backoffWithJitter(attempt, settings.initialMs, settings.maxMs, random);
}

export function retryAfterMs(value: string, now: number): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

