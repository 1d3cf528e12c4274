// Reading the build queue's jobs, shared by api-controller (its lambdas' jobs) and the builder's
// admin API (every build). Typed structurally so this library needs no BullMQ of its own.
import { lambdaJobIdPrefix } from './build-record.ts';
import type { LambdaRef } from './index.ts';

/** Every state a BullMQ job of this queue can be in (no repeatable or flow jobs here). */
export const QUEUE_JOB_STATES = ['completed', 'failed', 'active', 'wait', 'waiting-children', 'prioritized', 'delayed'] as const;
export type QueueJobStateName = (typeof QUEUE_JOB_STATES)[number];

export interface JobLister<J extends { id?: string }> {
  getJobs(types: QueueJobStateName[] | QueueJobStateName): Promise<J[]>;
}

/** The queue's jobs with the state each was listed in; only the lambda's (ids start with `<namespace>/<name>/`) when given. */
export async function queueJobsByState<J extends { id?: string }>(queue: JobLister<J>, lambda?: LambdaRef): Promise<{ job: J; state: QueueJobStateName }[]> {
  const prefix = lambda ? lambdaJobIdPrefix(lambda) : '';
  const lists = await Promise.all(QUEUE_JOB_STATES.map(async (state) => (await queue.getJobs(state)).map((job) => ({ job, state }))));
  // A job that moved between two of the reads shows up once, in the later state read.
  const byId = new Map<string, { job: J; state: QueueJobStateName }>();
  for (const entry of lists.flat()) if (entry.job.id?.startsWith(prefix)) byId.set(entry.job.id, entry);
  return [...byId.values()];
}

/** Every job of the lambda, asset and image builds alike. */
export async function jobsOfLambda<J extends { id?: string }>(queue: JobLister<J>, lambda: LambdaRef): Promise<J[]> {
  return (await queueJobsByState(queue, lambda)).map((entry) => entry.job);
}
