import { describe, expect, it } from '@jest/globals';
import { jobsOfLambda, QUEUE_JOB_STATES, queueJobsByState, type QueueJobStateName } from './queue-jobs.ts';

/** A queue whose one getJobs call answers from a table of job id -> state. */
const lister = (jobs: Record<string, QueueJobStateName>) => {
  const asked: QueueJobStateName[][] = [];
  return {
    asked,
    getJobs: async (states: QueueJobStateName[]) => {
      asked.push(states);
      return Object.entries(jobs)
        .filter(([, state]) => states.includes(state))
        .map(([id, state]) => ({ id, getState: async () => state }));
    },
  };
};

describe('reading the queue', () => {
  const queue = lister({ 'shop/a/1': 'completed', 'shop/ab/2': 'completed', 'shop/a/3/image/r': 'failed', 'dev/a/4': 'wait' });

  it("lists the lambda's jobs in one read of every state", async () => {
    // "shop/a/" is not a prefix of "shop/ab/...".
    expect((await jobsOfLambda(queue, { namespace: 'shop', name: 'a' })).map((job) => job.id)).toEqual(['shop/a/1', 'shop/a/3/image/r']);
    expect(queue.asked.at(-1)).toEqual([...QUEUE_JOB_STATES]);
  });

  it('lists every job with its state', async () => {
    expect((await queueJobsByState(queue)).map(({ job, state }) => [job.id, state])).toEqual([
      ['shop/a/1', 'completed'],
      ['shop/ab/2', 'completed'],
      ['shop/a/3/image/r', 'failed'],
      ['dev/a/4', 'wait'],
    ]);
  });
});
