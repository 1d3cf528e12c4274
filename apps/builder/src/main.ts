import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createArtifactStore } from '@kublambda/artifact-store';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, type BuildJobData, type BuildJobResult } from '@kublambda/build-queue';
import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { createAdminApp, serveAdminApp } from './admin-app.ts';
import { createBuilderMetrics, measureBuild } from './builder-metrics.ts';
import { parseBuilderConfig } from './config.ts';
import { runBuildJob } from './run-build-job.ts';

const logger = createLogger('builder');
const config = configOrExit(() => parseBuilderConfig(process.env), logger);
await Promise.all([mkdir(config.workRoot, { recursive: true }), mkdir(config.npmCacheDir, { recursive: true })]);
const assets = await createArtifactStore(config.artifactStore);
const deps = { assets, workRoot: config.workRoot, npmCacheDir: config.npmCacheDir, logger };

// BullMQ workers need a connection that never gives up on a command.
const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
// The admin server reads the queue through a connection of its own, so a slow page never delays a build.
const adminConnection = config.admin && new Redis(config.redisUrl);
const adminQueue = adminConnection && new Queue<BuildJobData, BuildJobResult>(BUILD_QUEUE, { connection: adminConnection, prefix: BUILD_QUEUE_PREFIX });
adminQueue?.on('error', (error) => logger.error('admin queue connection error', { error: String(error) }));
const metrics = createBuilderMetrics({ queueCounts: adminQueue && (() => adminQueue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed')) });
let adminServer: Server | undefined;
if (config.admin && adminQueue) {
  adminServer = await serveAdminApp(createAdminApp(adminQueue, metrics.registry, { boardActions: config.admin.boardActions }), config.admin.host, config.admin.port);
  logger.info('admin listening', { host: config.admin.host, port: config.admin.port, boardActions: config.admin.boardActions });
}

const worker = new Worker<BuildJobData, BuildJobResult>(BUILD_QUEUE, (job) => measureBuild(metrics, 'asset', () => runBuildJob(job.data, deps)), {
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
adminServer?.close();
await adminQueue?.close();
adminConnection?.disconnect();
connection.disconnect();
logger.info('stopped');
// Builds are finished and the queue connection closed; do not wait on idle keep-alive sockets.
process.exit(0);
