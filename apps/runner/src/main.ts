import http from 'node:http';
import { createArtifactStore } from '@kublambda/artifact-store';
import { configOrExit } from '@kublambda/config';
import { createLogger, forLambda } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { connectStateRedis, createStateStore } from '@kublambda/state-tables';
import { AssetCache } from './asset-cache.ts';
import { parseRunnerConfig } from './config.ts';
import { followRoutes } from './follow-routes.ts';
import { LambdaWorkers } from './lambda-workers.ts';
import { createRunnerMetrics } from './metrics.ts';
import { RouteMatcher } from './route-matcher.ts';
import { serveRequest } from './serve-request.ts';
import { WorkerPool } from './worker/worker-pool.ts';

const logger = createLogger('runner');
const config = configOrExit(() => parseRunnerConfig(process.env), logger);
const store = await createArtifactStore(config.artifactStore);
const cache = new AssetCache({ dir: config.assetCacheDir, maxBytes: config.assetCacheMaxBytes, store });
await cache.init();
const routes = new RouteMatcher();
// Generic workers spawned ahead of need: a cold start then only loads the lambda's asset.
const pool = new WorkerPool({ size: config.workerPoolSize, onSpawnError: (error) => logger.warn('spawning a pooled worker failed', { error: String(error) }) });
const metrics = createRunnerMetrics({ pooledWorkers: () => pool.available });
const stateRedis = await connectStateRedis(config.redisUrl, (error) => logger.warn('state store connection error', { error: describeError(error) }));
const workers = new LambdaWorkers({
  cache,
  metrics,
  logger,
  pool,
  state: createStateStore(stateRedis),
  envKeys: config.envKeys,
  maxWorkersPerLambda: config.maxWorkersPerLambda,
  workerIdleMs: config.workerIdleMs,
  routeOf: (key) => routes.get(key),
});
const follower = followRoutes(config.redisUrl, routes, logger, {
  // A new asset is fetched when announced, so the lambda's first request does not wait for it.
  onPublished: (route) => void cache.path(route.artifact.digest).catch((error: unknown) => forLambda(logger, route).warn('prefetching the asset failed', { error: String(error) })),
  // A lambda whose route is gone gets no more requests: its worker stops.
  onRemoved: (key) => workers.forget(key),
});
await follower.loaded;

// These three exact paths belong to the runner, whatever lambda routes say.
const adminEndpoints: Record<string, (response: http.ServerResponse) => Promise<void>> = {
  '/healthz': async (response) => void response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'),
  // Ready once the route table is loaded, which happens before the server listens.
  '/readyz': async (response) => void response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ready', routes: routes.size })),
  '/metrics': async (response) => void response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics()),
};

// Node's 16 KiB header limit would refuse watch-trigger events, which carry the object before
// the change in a ce-oldobject header (up to 256 KiB of JSON, percent-encoded: libs/watch-triggers).
const server = http.createServer({ maxHeaderSize: 1024 * 1024 }, (request, response) => {
  const admin = adminEndpoints[request.url ?? ''];
  if (admin) void admin(response);
  else void serveRequest(request, response, { routes, workers, maxBodyBytes: config.maxBodyBytes, metrics, logger });
});
server.listen(config.port, config.host);
await new Promise((resolve) => server.once('listening', resolve));
const address = server.address() as { port: number };
logger.info('listening', { host: config.host, port: address.port, routes: routes.size });

await new Promise<void>((resolve) => {
  process.once('SIGTERM', () => resolve());
  process.once('SIGINT', () => resolve());
});
// Finish in-flight requests, then stop the workers.
await new Promise((resolve) => server.close(resolve));
follower.stop();
await Promise.all([workers.stopAll(), pool.stop()]);
stateRedis.disconnect();
logger.info('stopped');
process.exit(0);
