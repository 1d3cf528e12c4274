import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Queue, Worker, type Job } from 'bullmq';
import { connectRedis } from '@kublambda/redis-connection';
import { createArtifactStore, createS3Client } from '@kublambda/artifact-store';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, IMAGE_JOB_NAME, type BuildJobData, type BuildJobResult, type ImageJobData, type ImageJobResult } from '@kublambda/build-queue';
import { configOrExit, serveAdmin } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { RegistryClient } from '@kublambda/oci-image';
import { loadKubeConfig } from '@kublambda/reconcile-runtime';
import { createAdminApp } from './admin-app.ts';
import { createBuilderMetrics, measureBuild } from './builder-metrics.ts';
import { parseBuilderConfig } from './config.ts';
import { createDirectImageBackend, runImageJob, type ImageBackend } from './image-build.ts';
import { createKanikoImageBackend } from './kaniko-backend.ts';
import { runBuildJob } from './run-build-job.ts';

const logger = createLogger('builder');
const config = configOrExit(() => parseBuilderConfig(process.env), logger);
await Promise.all([mkdir(config.workRoot, { recursive: true }), mkdir(config.npmCacheDir, { recursive: true })]);
const assets = await createArtifactStore(config.artifactStore);
const deps = { assets, workRoot: config.workRoot, npmCacheDir: config.npmCacheDir, npmRegistry: config.npmRegistry, logger };
const imageBackend = createImageBackend();
const imageDeps = { assets, backend: imageBackend, logger };

function createImageBackend(): ImageBackend | undefined {
  const image = config.image;
  if (image.backend === 'direct') return createDirectImageBackend(new RegistryClient(image.registry), image.base);
  if (image.backend !== 'kaniko' || config.artifactStore.kind !== 's3') return undefined;
  const kubeConfig = loadKubeConfig();
  return createKanikoImageBackend({ config: image, kubeConfig, s3: createS3Client(config.artifactStore), workRoot: config.workRoot });
}

// BullMQ workers need a connection that never gives up on a command.
const connection = connectRedis(config.redisUrl, { maxRetriesPerRequest: null });
// The admin server reads the queue through a connection of its own, so a slow page never delays a build.
const adminConnection = config.admin && connectRedis(config.redisUrl);
const adminQueue = adminConnection && new Queue<BuildJobData, BuildJobResult>(BUILD_QUEUE, { connection: adminConnection, prefix: BUILD_QUEUE_PREFIX });
adminQueue?.on('error', (error) => logger.error('admin queue connection error', { error: String(error) }));
const metrics = createBuilderMetrics({ queueCounts: adminQueue && (() => adminQueue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed')) });
let adminServer: Server | undefined;
if (config.admin && adminQueue) {
  adminServer = await serveAdmin(createAdminApp(adminQueue, metrics.registry, { boardActions: config.admin.boardActions }), config.admin);
  logger.info('admin listening', { host: config.admin.host, port: config.admin.port, boardActions: config.admin.boardActions });
}

type QueueJobData = BuildJobData | ImageJobData;
type QueueJobResult = BuildJobResult | ImageJobResult;
// One queue, two kinds of job, told apart by the job's name.
const processJob = (job: Job<QueueJobData, QueueJobResult>): Promise<QueueJobResult> =>
  job.name === IMAGE_JOB_NAME
    ? measureBuild(metrics, 'image', () => runImageJob(job.data as ImageJobData, imageDeps))
    : measureBuild(metrics, 'asset', () => runBuildJob(job.data as BuildJobData, deps));
const worker = new Worker<QueueJobData, QueueJobResult>(BUILD_QUEUE, processJob, {
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
logger.info('building', {
  queue: BUILD_QUEUE,
  concurrency: config.concurrency,
  imageBackend: config.image.backend,
  ...(config.image.backend === 'direct' ? { imageRegistry: config.image.registry.url, imageBase: config.image.base } : {}),
  ...(config.image.backend === 'kaniko' ? { imageRegistry: config.image.registry.host, imageBase: config.image.base, kanikoImage: config.image.image, kanikoNamespace: config.image.namespace } : {}),
});

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
