import { describe, expect, it } from '@jest/globals';
import { jobsOfLambda, QUEUE_JOB_STATES, queueJobsByState, type QueueJobStateName } from './queue-jobs.ts';

interface TestJob {
  id: string;
  finishedOn?: number;
  getState(): Promise<string>;
}

/** A queue whose one getJobs call answers from a table of job id -> state. */
const lister = (jobs: Record<string, QueueJobStateName>) => {
  const asked: QueueJobStateName[][] = [];
  const finished = (state: string) => state === 'completed' || state === 'failed';
  const jobOf = (id: string, state: QueueJobStateName): TestJob => ({ id, ...(finished(state) ? { finishedOn: 1 } : {}), getState: async () => state });
  return {
    asked,
    getJobs: async (states: QueueJobStateName[]) => {
      asked.push(states);
      return Object.entries(jobs)
        .filter(([, state]) => states.includes(state))
        .map(([id, state]) => jobOf(id, state));
    },
    getJob: async (id: string): Promise<TestJob | undefined> => (jobs[id] ? jobOf(id, jobs[id]) : undefined),
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

  it('reads a job again that finished between the listing and the question, so its result is there', async () => {
    const listedActive: TestJob = { id: 'shop/a/5', getState: async () => 'completed' };
    const reread: TestJob = { id: 'shop/a/5', finishedOn: 2, getState: async () => 'completed' };
    const racing = { getJobs: async () => [listedActive], getJob: async () => reread };
    expect(await queueJobsByState(racing)).toEqual([{ job: reread, state: 'completed' }]);
  });
});
