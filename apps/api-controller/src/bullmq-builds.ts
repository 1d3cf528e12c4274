import type { Queue } from 'bullmq';
import type { BuildJobData, BuildJobResult } from '@kublambda/build-queue';
import type { LambdaReconcilerDeps } from './reconcile-lambda.ts';

export type BuildQueue = Queue<BuildJobData, BuildJobResult>;

const ALL_STATES = ['completed', 'failed', 'active', 'wait', 'waiting-children', 'prioritized', 'delayed'] as const;

/** Build requests as BullMQ jobs whose ids name the lambda and source, so repeats collapse. */
export function bullmqBuilds(queue: BuildQueue): LambdaReconcilerDeps['builds'] {
  return {
    state: async (jobId) => {
      const job = await queue.getJob(jobId);
      if (!job) return { state: 'absent' };
      const state = await job.getState();
      if (state === 'completed') return { state: 'done', result: job.returnvalue };
      if (state === 'failed') return { state: 'error', message: `build failed after ${job.attemptsMade} attempts: ${job.failedReason}` };
      return { state: 'pending' };
    },
    request: async (jobId, data) => {
      await queue.add('build', data, {
        jobId,
        attempts: 5,
        backoff: { type: 'exponential', delay: 1_000 },
        // api-controller removes a job once its outcome is in the Lambda's status.
        removeOnComplete: false,
        removeOnFail: false,
      });
    },
    forget: async (jobId) => {
      await queue.remove(jobId);
    },
    forgetAll: async (lambda) => {
      const prefix = `${lambda.namespace}/${lambda.name}/`;
      const jobs = (await queue.getJobs([...ALL_STATES])).filter((job) => job.id?.startsWith(prefix));
      let running = false;
      const builtDigests: string[] = [];
      for (const job of jobs) {
        if (await job.isActive()) {
          running = true;
          continue;
        }
        const result = job.returnvalue as BuildJobResult | null;
        if (result?.outcome === 'built') builtDigests.push(result.artifact.digest);
        await job.remove();
      }
      return { running, builtDigests };
    },
  };
}
