import type { Server } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import express from 'express';
import { Queue, QueueEvents } from 'bullmq';
import { createArtifactStore } from '@kublambda/artifact-store';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, lambdaOfBuildJobId } from '@kublambda/build-queue';
import type { Lambda } from '@kublambda/crd-types';
import { configOrExit, serveAdmin } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { LeaderElector, WorkQueue, describeError, loadKubeConfig, objectKey, startReconcileWorkers, watchResource } from '@kublambda/reconcile-runtime';
import { connectRedis } from '@kublambda/redis-connection';
import { claimRoute, isClaimAtOrBelow, publishRoute, readRoute, releaseRouteClaim, removeRoute } from '@kublambda/route-table';
import { deleteTables, stateRedisOptions } from '@kublambda/state-tables';
import { RegistryClient } from '@kublambda/oci-image';
import { ADMIN_API_PATH, createAdminApi } from './admin-api.ts';
import { bullmqBuilds, bullmqImages, type BuildQueue } from './bullmq-builds.ts';
import { parseApiControllerConfig } from './config.ts';
import { desiredClaim } from './desired-route.ts';
import { lambdaKeyOfWatcherObject } from './desired-watcher.ts';
import { ensureRunnerService } from './ensure-http-exposure.ts';
import { lambdaKeyOfOwned } from './http-exposure.ts';
import { kubeConfigMaps, kubeEvents, kubeLambdas, kubeNamespaces, lambdasWatchPath, listLambdas } from './kube-lambdas.ts';
import { kubeIngresses, kubeSecrets, kubeServices, ownedObjectLists } from './kube-owned-objects.ts';
import { kubeWatcherObjects, watcherObjectLists, type WatcherObjectSource } from './kube-watcher-objects.ts';
import { redisAdminData } from './redis-admin-data.ts';
import { redisWatchers } from './redis-watchers.ts';
import { kubeResourceDiscovery } from './resource-discovery.ts';
import { reconcileLambda, type LambdaReconcilerDeps } from './reconcile-lambda.ts';

const logger = createLogger('api-controller');
const config = configOrExit(() => parseApiControllerConfig(process.env), logger);
const kubeConfig = loadKubeConfig();

const redis = connectRedis(config.redisUrl, { maxRetriesPerRequest: null });
const queueConnection = connectRedis(config.redisUrl, { maxRetriesPerRequest: null });
const buildQueue: BuildQueue = new Queue(BUILD_QUEUE, { connection: queueConnection, prefix: BUILD_QUEUE_PREFIX });
const eventsConnection = connectRedis(config.redisUrl, { maxRetriesPerRequest: null });
const buildEvents = new QueueEvents(BUILD_QUEUE, { connection: eventsConnection, prefix: BUILD_QUEUE_PREFIX });
const assets = await createArtifactStore(config.artifactStore);
// Short timeouts: a deletion only sends one request, and a registry away must not hold a worker.
const registry = config.images && new RegistryClient({ ...config.images.registry, timeoutMs: 15_000 });
// State tables get a connection that fails fast (no offline queue, a command timeout), as the
// runner's does: a table deletion while Redis is away fails, and the deleted lambda is retried
// with backoff and an event saying why, rather than holding a worker until Redis returns.
// Connected in the background, so the controller starts without Redis as it does for the rest.
const stateRedis = connectRedis(config.redisUrl, stateRedisOptions());
let stateRedisDown = false;
stateRedis.on('error', (error: Error) => {
  // ioredis reports every reconnection attempt; one line per outage is enough.
  if (!stateRedisDown) logger.warn('state store connection error', { error: describeError(error) });
  stateRedisDown = true;
});
stateRedis.on('ready', () => {
  if (stateRedisDown) logger.info('state store connection restored');
  stateRedisDown = false;
});

// Every replica serves the admin API, leading or not: it only reads Redis (and removes a dead
// letter once it was delivered).
let adminServer: Server | undefined;
if (config.admin) {
  const adminApp = express().disable('x-powered-by').get('/healthz', (_request, response) => void response.json({ status: 'ok' })).use(ADMIN_API_PATH, createAdminApi(redisAdminData(redis, stateRedis, config.admin.runnerUrl)));
  adminServer = await serveAdmin(adminApp, config.admin);
  logger.info('admin API listening', { host: config.admin.host, port: config.admin.port });
}

const shutdown = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => shutdown.abort());

async function reconcileWhileLeading(leading: AbortSignal): Promise<void> {
  const queue = new WorkQueue();
  const watch = <T extends k8s.KubernetesObject>(source: { path: string; labelSelector?: string; list: () => Promise<k8s.KubernetesListObject<T>> }, onKey: (key: string) => void) =>
    watchResource<T>({ kubeConfig, ...source, onObject: (object) => onKey(objectKey(object)), onGone: onKey, logger, relistIntervalMs: config.relistIntervalMs });
  const lambdas = watch<Lambda>({ path: lambdasWatchPath(config.watchNamespace), list: listLambdas(kubeConfig, config.watchNamespace) }, (key) => queue.add(key));
  // Changes to the objects lambdas own (an edit, a deletion, a load balancer address) bring
  // their lambda back for a pass: that repairs drift and keeps status.url current.
  const owned = ownedObjectLists(kubeConfig, config.watchNamespace, config.http.platformNamespace);
  const toOwner = (key: string) => {
    const [namespace, name] = key.split('/') as [string, string];
    const lambda = lambdaKeyOfOwned(namespace, name);
    if (lambda) queue.add(lambda);
  };
  const ingresses = watch<k8s.V1Ingress>(owned.ingresses, toOwner);
  const services = watch<k8s.V1Service>(owned.services, toOwner);
  // Watcher objects name their lambda in labels (kublambda-watch-x is not lambda watch-x's
  // Ingress). An object gone between relists comes back as a key only: remember whose it was.
  const watcherOwners = new Map<string, string>();
  const watchWatcherObjects = (source: WatcherObjectSource) => {
    const toLambda = (lambda: string | undefined) => {
      // Roles and RoleBindings are watched in every namespace; other controllers' lambdas are not ours.
      if (lambda && (!config.watchNamespace || lambda.startsWith(`${config.watchNamespace}/`))) queue.add(lambda);
    };
    return watchResource<k8s.KubernetesObject>({
      kubeConfig,
      ...source,
      onObject: (object) => {
        const lambda = lambdaKeyOfWatcherObject(object);
        if (lambda) watcherOwners.set(`${source.path}:${objectKey(object)}`, lambda);
        toLambda(lambda);
      },
      onGone: (key) => toLambda(watcherOwners.get(`${source.path}:${key}`)),
      logger,
      relistIntervalMs: config.relistIntervalMs,
    });
  };
  const watcherLists = watcherObjectLists(kubeConfig, config.watchNamespace);
  const watcherInformers = {
    serviceAccounts: watchWatcherObjects(watcherLists.serviceAccounts),
    roles: watchWatcherObjects(watcherLists.roles),
    roleBindings: watchWatcherObjects(watcherLists.roleBindings),
    secrets: watchWatcherObjects(watcherLists.secrets),
    deployments: watchWatcherObjects(watcherLists.deployments),
  };
  const platformQueue = new WorkQueue();
  const runnerServiceKey = `${config.http.platformNamespace}/runner-service`;
  const runnerService = watch<k8s.V1Service>(owned.runnerService, () => platformQueue.add(runnerServiceKey));
  const onBuildFinished = ({ jobId }: { jobId: string }) => {
    const lambda = lambdaOfBuildJobId(jobId);
    if (lambda) queue.add(`${lambda.namespace}/${lambda.name}`);
  };
  buildEvents.on('completed', onBuildFinished);
  buildEvents.on('failed', onBuildFinished);

  const deps: LambdaReconcilerDeps = {
    lambdas: kubeLambdas(kubeConfig, () => lambdas.cache.list()),
    readConfigMap: kubeConfigMaps(kubeConfig),
    readSecret: kubeSecrets(kubeConfig),
    envKeys: config.envKeys,
    builds: bullmqBuilds(buildQueue),
    assets,
    ...(config.images && registry ? { images: bullmqImages(buildQueue, registry, config.images.repositoryPrefix) } : {}),
    routes: {
      read: (key) => readRoute(redis, key),
      publish: (route) => publishRoute(redis, route, config.redisWriteConfirmation),
      remove: (key) => removeRoute(redis, key, config.redisWriteConfirmation),
      claim: (key, claim, options) => claimRoute(redis, key, claim, options),
      release: (key) => releaseRouteClaim(redis, key),
      // Lambdas refused a path below the freed one (another namespace's) may have theirs now too.
      onReleased: (claim) => {
        for (const lambda of lambdas.cache.list()) if (isClaimAtOrBelow(desiredClaim(lambda), claim)) queue.add(objectKey(lambda));
      },
    },
    paths: config.paths,
    namespaces: kubeNamespaces(kubeConfig),
    http: { config: config.http, ingresses: kubeIngresses(kubeConfig, () => ingresses.cache), services: kubeServices(kubeConfig, () => services.cache) },
    watchers: {
      config: config.watchers,
      http: config.http,
      controllerRedisUrl: config.redisUrl,
      envKeys: config.envKeys,
      discovery: kubeResourceDiscovery(kubeConfig),
      objects: kubeWatcherObjects(kubeConfig, {
        serviceAccounts: () => watcherInformers.serviceAccounts.cache,
        roles: () => watcherInformers.roles.cache,
        roleBindings: () => watcherInformers.roleBindings.cache,
        secrets: () => watcherInformers.secrets.cache,
        deployments: () => watcherInformers.deployments.cache,
      }),
      redis: redisWatchers(redis),
    },
    state: { deleteTables: (namespace, tables) => deleteTables(stateRedis, namespace, tables) },
    events: kubeEvents(kubeConfig, config.identity, logger),
    logger,
    now: () => new Date(),
  };
  const runnerServices = kubeServices(kubeConfig, () => runnerService.cache);
  const stopLeading = new Promise<void>((resolve) => (leading.aborted ? resolve() : leading.addEventListener('abort', () => resolve(), { once: true })));
  // The first lists may keep failing (API server starting up); leadership can end meanwhile.
  // Owned objects are listed before the first pass, so it compares with what exists.
  const informers = [lambdas, ingresses, services, ...Object.values(watcherInformers)];
  await Promise.race([Promise.all(informers.map((informer) => informer.synced)), stopLeading]);
  const workers = leading.aborted
    ? []
    : [
        startReconcileWorkers({ queue, reconcile: (key) => reconcileLambda(key, deps), concurrency: config.reconcileConcurrency, logger }),
        // The chart runs the runner pods; the Service in front of them is ours to keep.
        startReconcileWorkers({ queue: platformQueue, reconcile: () => ensureRunnerService(runnerServices, config.http), concurrency: 1, logger }),
      ];
  platformQueue.add(runnerServiceKey);
  if (workers.length > 0) logger.info('reconciling lambdas', { identity: config.identity, platformNamespace: config.http.platformNamespace });
  await stopLeading;
  buildEvents.off('completed', onBuildFinished);
  buildEvents.off('failed', onBuildFinished);
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all([...informers, runnerService].map((w) => w.stop()));
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
adminServer?.close();
await Promise.all([buildEvents.close(), buildQueue.close()]);
// BullMQ leaves connections it was handed open; they are ours to close.
for (const connection of [redis, queueConnection, eventsConnection, stateRedis]) connection.disconnect();
logger.info('stopped', { outcome });
// Everything is closed or released; exit rather than wait on idle keep-alive sockets. A
// replica that lost its lease exits non-zero so it restarts clean, as client-go controllers do.
process.exit(outcome === 'lost' ? 1 : 0);
