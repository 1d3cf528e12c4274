// The build queue as JSON for `kublambda builds` (which reaches it through a port-forward, so
// Kubernetes RBAC on pods/portforward governs it): GET /api/builds lists build records
// (libs/build-queue BuildRecord), POST /api/builds/<url-encoded id>/retry retries a failed one.
import express, { type Router } from 'express';
import type { Queue } from 'bullmq';
import {
  BUILD_STATES,
  buildRecordOfJob,
  finishedBuildRecordsFromEvents,
  matchesBuildFilter,
  parseBuildJobId,
  queueJobsByState,
  sortBuildRecords,
  type BuildFilter,
  type BuildRecord,
  type BuildState,
  type QueueEvent,
} from '@kublambda/build-queue';

export const BUILD_API_PATH = '/api/builds';

export interface BuildApiOptions {
  /** Whether POST .../retry is allowed (BUILD_BOARD_ACTIONS, as for the board). */
  retries: boolean;
  now?: () => number;
}

/** Thrown for a query or request the API refuses; status is the HTTP status. */
class BuildApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Every build record the queue knows of (queued jobs, then those known only from its event history), filtered. */
export async function listBuildRecords(queue: Queue, filter: BuildFilter, now: number): Promise<BuildRecord[]> {
  const jobs = await queueJobsByState(queue);
  const queued = jobs.flatMap(({ job, state }) => buildRecordOfJob(job, state, now) ?? []);
  const history = finishedBuildRecordsFromEvents(await queueEvents(queue), new Set(jobs.map(({ job }) => job.id!)), now);
  return sortBuildRecords([...queued, ...history].filter((record) => matchesBuildFilter(record, filter)));
}

/** The queue's event stream, oldest first (XRANGE: the builder's Redis user may run it on the queue's keys). */
async function queueEvents(queue: Queue): Promise<QueueEvent[]> {
  const client = await (queue.getBackend() as unknown as { client: Promise<{ xrange(key: string, start: string, end: string): Promise<[string, string[]][]> }> }).client;
  const entries = await client.xrange(queue.keys.events!, '-', '+');
  return entries.map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { id, fields };
  });
}

export function parseBuildFilter(query: Record<string, unknown>): BuildFilter {
  const one = (name: string) => {
    const value = query[name];
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') throw new BuildApiError(400, `${name} must be given once`);
    return value;
  };
  const state = one('state');
  if (state !== undefined && !(BUILD_STATES as readonly string[]).includes(state)) {
    throw new BuildApiError(400, `state must be one of ${BUILD_STATES.join(', ')}, not "${state}"`);
  }
  return { namespace: one('namespace'), lambda: one('lambda'), state: state as BuildState | undefined };
}

/** Retries a failed build (BullMQ moves it back to waiting, its attempts counted afresh); the record after. */
export async function retryBuild(queue: Queue, id: string, now: number): Promise<BuildRecord> {
  const job = parseBuildJobId(id) ? await queue.getJob(id) : undefined;
  if (!job) throw new BuildApiError(404, `no build "${id}" in the queue`);
  const state = await job.getState();
  const record = buildRecordOfJob(job, state, now)!;
  if (state !== 'failed') {
    const why =
      record.state === 'failed'
        ? `it ran to the end and its input could not be built (${record.error}); retrying cannot change that, a new source can`
        : `it is ${record.state}`;
    throw new BuildApiError(409, `build "${id}" is not failed: ${why}`);
  }
  // The whole retry budget again: retrying is what an operator does once the cause is fixed.
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  return buildRecordOfJob(job, await job.getState(), now)!;
}

export function createBuildApi(queue: Queue, options: BuildApiOptions): Router {
  const now = options.now ?? Date.now;
  const router = express.Router();
  router.get('/', async (request, response, next) => {
    try {
      response.json({ builds: await listBuildRecords(queue, parseBuildFilter(request.query), now()) });
    } catch (error) {
      next(error);
    }
  });
  router.post('/:id/retry', async (request, response, next) => {
    try {
      if (!options.retries) throw new BuildApiError(403, 'retrying builds is off: the builder runs with BUILD_BOARD_ACTIONS=false');
      response.json({ build: await retryBuild(queue, request.params.id, now()) });
    } catch (error) {
      next(error);
    }
  });
  router.use(((error, _request, response, next) => {
    if (!(error instanceof BuildApiError)) return next(error);
    response.status(error.status).json({ error: error.message, code: error.status });
  }) as express.ErrorRequestHandler);
  return router;
}
