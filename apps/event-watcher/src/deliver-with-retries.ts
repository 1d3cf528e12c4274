import { setTimeout as sleep } from 'node:timers/promises';
import { describeOutcome, isSuccess, retryDelay, shouldRetry, type AttemptOutcome, type RetrySettings } from './retry-policy.ts';

export type DeliveryResult = { delivered: true; attempts: number } | { delivered: false; attempts: number; lastError: string };

export interface DeliverWithRetriesOptions {
  attempt: (signal: AbortSignal) => Promise<AttemptOutcome>;
  retry: RetrySettings;
  /** Aborted when the watcher must stop delivering (lease lost, shutdown): rejects with the abort reason. */
  signal: AbortSignal;
  onRetry?: (attempt: number, outcome: AttemptOutcome, delayMs: number) => void;
  wait?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

/**
 * Delivers one event: retried with backoff while the answer says "not now", given up on after
 * the retry budget or at once when the receiver refuses the event itself (another 4xx).
 */
export async function deliverWithRetries(options: DeliverWithRetriesOptions): Promise<DeliveryResult> {
  const wait = options.wait ?? ((ms, signal) => sleep(ms, undefined, { signal }));
  for (let attempt = 1; ; attempt++) {
    options.signal.throwIfAborted();
    const outcome = await options.attempt(options.signal);
    // An attempt cut short by the abort is not a failure of the receiver.
    options.signal.throwIfAborted();
    if (isSuccess(outcome)) return { delivered: true, attempts: attempt };
    if (!shouldRetry(outcome) || attempt >= options.retry.attempts) return { delivered: false, attempts: attempt, lastError: describeOutcome(outcome) };
    const delayMs = retryDelay(attempt, outcome, options.retry);
    options.onRetry?.(attempt, outcome, delayMs);
    await wait(delayMs, options.signal);
  }
}
