import * as k8s from '@kubernetes/client-node';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { createArtifactStore } from '@kublambda/artifact-store';
import { BUILD_QUEUE, lambdaOfBuildJobId } from '@kublambda/build-queue';
import type { Lambda } from '@kublambda/crd-types';
import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { LeaderElector, WorkQueue, objectKey, startReconcileWorkers, watchResource } from '@kublambda/reconcile-runtime';
import { publishRoute, readRoute, removeRoute } from '@kublambda/route-table';
import { bullmqBuilds, type BuildQueue } from './bullmq-builds.ts';
import { parseApiControllerConfig } from './config.ts';
import { kubeConfigMaps, kubeEvents, kubeLambdas, lambdasWatchPath, listLambdas } from './kube-lambdas.ts';
import { reconcileLambda, type LambdaReconcilerDeps } from './reconcile-lambda.ts';

const logger = createLogger('api-controller');
const config = configOrExit(() => parseApiControllerConfig(process.env), logger);
const kubeConfig = new k8s.KubeConfig();
kubeConfig.loadFromDefault();

const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const queueConnection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const buildQueue: BuildQueue = new Queue(BUILD_QUEUE, { connection: queueConnection });
const eventsConnection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const buildEvents = new QueueEvents(BUILD_QUEUE, { connection: eventsConnection });
const assets = await createArtifactStore(config.artifactStore);

const shutdown = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => shutdown.abort());

async function reconcileWhileLeading(leading: AbortSignal): Promise<void> {
  const queue = new WorkQueue();
  const lambdas = watchResource<Lambda>({
    kubeConfig,
    path: lambdasWatchPath(config.watchNamespace),
    list: listLambdas(kubeConfig, config.watchNamespace),
    onObject: (lambda) => queue.add(objectKey(lambda)),
    onGone: (key) => queue.add(key),
    logger,
    relistIntervalMs: config.relistIntervalMs,
  });
  const onBuildFinished = ({ jobId }: { jobId: string }) => {
    const lambda = lambdaOfBuildJobId(jobId);
    if (lambda) queue.add(`${lambda.namespace}/${lambda.name}`);
  };
  buildEvents.on('completed', onBuildFinished);
  buildEvents.on('failed', onBuildFinished);

  const deps: LambdaReconcilerDeps = {
    lambdas: kubeLambdas(kubeConfig, () => lambdas.cache.list()),
    readConfigMap: kubeConfigMaps(kubeConfig),
    builds: bullmqBuilds(buildQueue),
    assets,
    routes: { read: (key) => readRoute(redis, key), publish: (route) => publishRoute(redis, route), remove: (key) => removeRoute(redis, key) },
    events: kubeEvents(kubeConfig, config.identity, logger),
    logger,
    now: () => new Date(),
  };
  const stopLeading = new Promise<void>((resolve) => (leading.aborted ? resolve() : leading.addEventListener('abort', () => resolve(), { once: true })));
  // The first list may keep failing (API server starting up); leadership can end meanwhile.
  await Promise.race([lambdas.synced, stopLeading]);
  const workers = leading.aborted
    ? undefined
    : startReconcileWorkers({ queue, reconcile: (key) => reconcileLambda(key, deps), concurrency: config.reconcileConcurrency, logger });
  if (workers) logger.info('reconciling lambdas', { identity: config.identity });
  await stopLeading;
  buildEvents.off('completed', onBuildFinished);
  buildEvents.off('failed', onBuildFinished);
  await workers?.stop();
  await lambdas.stop();
}

const elector = new LeaderElector({
  kubeConfig,
  namespace: config.leaseNamespace,
  leaseName: config.leaseName,
  identity: config.identity,
  logger,
  leaseDurationMs: config.leaseDurationMs,
  renewDeadlineMs: config.renewDeadlineMs,
  retryPeriodMs: config.retryPeriodMs,
});
logger.info('starting', { identity: config.identity, lease: `${config.leaseNamespace}/${config.leaseName}` });
const outcome = await elector.run(reconcileWhileLeading, shutdown.signal);
await Promise.all([buildEvents.close(), buildQueue.close()]);
// BullMQ leaves connections it was handed open; they are ours to close.
for (const connection of [redis, queueConnection, eventsConnection]) connection.disconnect();
logger.info('stopped', { outcome });
// Everything is closed or released; exit rather than wait on idle keep-alive sockets. A
// replica that lost its lease exits non-zero so it restarts clean, as client-go controllers do.
process.exit(outcome === 'lost' ? 1 : 0);
