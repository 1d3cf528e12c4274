// Reading the build queue's jobs, shared by api-controller (its lambdas' jobs) and the builder's
// admin API (every build). Typed structurally so this library needs no BullMQ of its own.
import { lambdaJobIdPrefix } from './build-record.ts';
import type { LambdaRef } from './index.ts';

/** Every state a BullMQ job of this queue can be in (no repeatable or flow jobs here). */
export const QUEUE_JOB_STATES = ['completed', 'failed', 'active', 'wait', 'waiting-children', 'prioritized', 'delayed'] as const;
export type QueueJobStateName = (typeof QUEUE_JOB_STATES)[number];

export interface JobLister<J extends { id?: string }> {
  getJobs(types: QueueJobStateName[]): Promise<J[]>;
}

/**
 * The queue's jobs in every state (one read, which BullMQ makes atomically, so a job moving
 * between states is listed once); only the lambda's (ids start with `<namespace>/<name>/`) when given.
 */
export async function queueJobs<J extends { id?: string }>(queue: JobLister<J>, lambda?: LambdaRef): Promise<J[]> {
  const prefix = lambda ? lambdaJobIdPrefix(lambda) : '';
  return (await queue.getJobs([...QUEUE_JOB_STATES])).filter((job) => job.id?.startsWith(prefix));
}

/** Every job of the lambda, asset and image builds alike. */
export function jobsOfLambda<J extends { id?: string }>(queue: JobLister<J>, lambda: LambdaRef): Promise<J[]> {
  return queueJobs(queue, lambda);
}

/**
 * The queue's jobs, each with the state it is in now (asked of each job after the listing). A job
 * that finished between the listing and the question is read again: the copy listed holds no
 * result or failure reason yet.
 */
export async function queueJobsByState<J extends { id?: string; finishedOn?: number; getState(): Promise<string> }>(
  queue: JobLister<J> & { getJob(id: string): Promise<J | undefined> },
): Promise<{ job: J; state: string }[]> {
  const jobs = await queueJobs(queue);
  return Promise.all(
    jobs.map(async (job) => {
      const state = await job.getState();
      const finished = state === 'completed' || state === 'failed';
      const current = finished && !job.finishedOn && job.id !== undefined ? ((await queue.getJob(job.id)) ?? job) : job;
      return { job: current, state };
    }),
  );
}
