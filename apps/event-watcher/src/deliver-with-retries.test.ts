import { describe, expect, it } from '@jest/globals';
import { deliverWithRetries } from './deliver-with-retries.ts';
import type { AttemptOutcome } from './retry-policy.ts';

const retry = { attempts: 4, initialMs: 10, maxMs: 100 };
const answers = (...outcomes: AttemptOutcome[]) => {
  const calls: number[] = [];
  return { calls, attempt: async () => (calls.push(calls.length + 1), outcomes[Math.min(calls.length - 1, outcomes.length - 1)]!) };
};
const noWait = async () => undefined;

describe('deliverWithRetries', () => {
  it('succeeds at once on a 2xx', async () => {
    const target = answers({ status: 202, bodyExcerpt: '' });
    expect(await deliverWithRetries({ attempt: target.attempt, retry, signal: new AbortController().signal, wait: noWait })).toEqual({ delivered: true, attempts: 1 });
  });

  it('retries 503 and connection errors, then succeeds', async () => {
    const target = answers({ status: 503, bodyExcerpt: '' }, { error: 'ECONNRESET' }, { status: 200, bodyExcerpt: 'ok' });
    const retries: number[] = [];
    const result = await deliverWithRetries({ attempt: target.attempt, retry, signal: new AbortController().signal, wait: noWait, onRetry: (n) => retries.push(n) });
    expect(result).toEqual({ delivered: true, attempts: 3 });
    expect(retries).toEqual([1, 2]);
  });

  it('gives up after the retry budget with the last error', async () => {
    const target = answers({ status: 500, bodyExcerpt: 'broken' });
    const result = await deliverWithRetries({ attempt: target.attempt, retry, signal: new AbortController().signal, wait: noWait });
    expect(result).toEqual({ delivered: false, attempts: 4, lastError: 'HTTP 500: broken' });
  });

  it('does not retry a 400', async () => {
    const target = answers({ status: 400, bodyExcerpt: 'bad event' });
    const result = await deliverWithRetries({ attempt: target.attempt, retry, signal: new AbortController().signal, wait: noWait });
    expect(result).toEqual({ delivered: false, attempts: 1, lastError: 'HTTP 400: bad event' });
  });

  it('stops when aborted instead of counting it as a failure', async () => {
    const controller = new AbortController();
    const attempt = async () => {
      controller.abort(new Error('lease lost'));
      return { error: 'aborted' } as AttemptOutcome;
    };
    await expect(deliverWithRetries({ attempt, retry, signal: controller.signal, wait: noWait })).rejects.toThrow('lease lost');
  });
});
