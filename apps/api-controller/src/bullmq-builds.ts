import type { Queue } from 'bullmq';
import { BUILD_JOB_OPTIONS, IMAGE_JOB_NAME, jobsOfLambda, type BuildJobData, type BuildJobResult, type ImageJobData, type ImageJobResult } from '@kublambda/build-queue';
import type { LambdaReconcilerDeps } from './reconcile-lambda.ts';

/** Asset builds ("build") and image builds (IMAGE_JOB_NAME) share the queue. */
export type BuildQueue = Queue<BuildJobData | ImageJobData, BuildJobResult | ImageJobResult>;

type JobState<R> = { state: 'absent' } | { state: 'pending' } | { state: 'done'; result: R } | { state: 'error'; message: string };

/** Where a job stands; `what` names it in the message of one that failed after its retries. */
async function jobState<R extends BuildJobResult | ImageJobResult>(queue: BuildQueue, jobId: string, what: string): Promise<JobState<R>> {
  const job = await queue.getJob(jobId);
  if (!job) return { state: 'absent' };
  const state = await job.getState();
  if (state === 'completed') return { state: 'done', result: job.returnvalue as R };
  if (state === 'failed') return { state: 'error', message: `${what} failed after ${job.attemptsMade} attempts: ${job.failedReason}` };
  return { state: 'pending' };
}

/** Build requests as BullMQ jobs whose ids name the lambda and source, so repeats collapse. */
export function bullmqBuilds(queue: BuildQueue): LambdaReconcilerDeps['builds'] {
  return {
    state: (jobId) => jobState<BuildJobResult>(queue, jobId, 'build'),
    request: async (jobId, data) => {
      // api-controller removes a job once its outcome is in the Lambda's status.
      await queue.add('build', data, { jobId, ...BUILD_JOB_OPTIONS });
    },
    forget: async (jobId) => {
      await queue.remove(jobId);
    },
    forgetAll: async (lambda) => {
      const jobs = await jobsOfLambda(queue, lambda);
      let running = false;
      const builtDigests: string[] = [];
      for (const job of jobs) {
        if (await job.isActive()) {
          running = true;
          continue;
        }
        const result = job.returnvalue as BuildJobResult | ImageJobResult | null;
        if (result?.outcome === 'built') builtDigests.push(result.artifact.digest);
        await job.remove();
      }
      return { running, builtDigests };
    },
  };
}

/** Image builds on the same queue, and the registry they push to (for deletions). */
export function bullmqImages(
  queue: BuildQueue,
  registry: { deleteManifest(repository: string, digest: string): Promise<boolean> },
  repositoryPrefix: string,
): NonNullable<LambdaReconcilerDeps['images']> {
  return {
    repositoryPrefix,
    state: (jobId) => jobState<ImageJobResult>(queue, jobId, 'image build'),
    request: async (jobId, data) => {
      await queue.add(IMAGE_JOB_NAME, data, { jobId, ...BUILD_JOB_OPTIONS });
    },
    pushedBy: async (lambda) => {
      const jobs = await jobsOfLambda(queue, lambda);
      let running = false;
      const images: string[] = [];
      for (const job of jobs) {
        if (await job.isActive()) running = true;
        const result = job.returnvalue as BuildJobResult | ImageJobResult | null;
        if (job.name === IMAGE_JOB_NAME && result?.outcome === 'pushed') images.push(result.image);
      }
      return { running, images };
    },
    deleteManifest: (repository, digest) => registry.deleteManifest(repository, digest),
  };
}
