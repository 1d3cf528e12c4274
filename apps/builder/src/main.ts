import { mkdir } from 'node:fs/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createArtifactStore } from '@kublambda/artifact-store';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, type BuildJobData, type BuildJobResult } from '@kublambda/build-queue';
import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { parseBuilderConfig } from './config.ts';
import { runBuildJob } from './run-build-job.ts';

const logger = createLogger('builder');
const config = configOrExit(() => parseBuilderConfig(process.env), logger);
await Promise.all([mkdir(config.workRoot, { recursive: true }), mkdir(config.npmCacheDir, { recursive: true })]);
const assets = await createArtifactStore(config.artifactStore);
const deps = { assets, workRoot: config.workRoot, npmCacheDir: config.npmCacheDir, logger };

// BullMQ workers need a connection that never gives up on a command.
const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker<BuildJobData, BuildJobResult>(BUILD_QUEUE, (job) => runBuildJob(job.data, deps), {
  connection,
  prefix: BUILD_QUEUE_PREFIX,
  concurrency: config.concurrency,
  lockDuration: config.lockDurationMs,
  stalledInterval: config.stalledIntervalMs,
  maxStalledCount: 3,
});
worker.on('failed', (job, error) => {
  logger.warn('build attempt failed', { job: job?.id, attempt: job?.attemptsMade, error: String(error), cause: String((error as Error).cause ?? '') });
});
worker.on('error', (error) => logger.error('queue connection error', { error: String(error) }));
logger.info('building', { queue: BUILD_QUEUE, concurrency: config.concurrency });

await new Promise<void>((resolve) => {
  process.once('SIGTERM', () => resolve());
  process.once('SIGINT', () => resolve());
});
// Lets the running builds finish; unstarted jobs stay queued for the next worker.
await worker.close();
connection.disconnect();
logger.info('stopped');
// Builds are finished and the queue connection closed; do not wait on idle keep-alive sockets.
process.exit(0);
