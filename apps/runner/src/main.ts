import http from 'node:http';
import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { parseRunnerConfig, parseStandaloneRunnerConfig, runnerMode } from './config.ts';
import { LambdaWorkers } from './lambda-workers.ts';
import { createRunnerMetrics } from './metrics.ts';
import { startPoolSource } from './pool-source.ts';
import type { RunnerSource } from './runner-source.ts';
import { serveRequest } from './serve-request.ts';
import { startStandaloneSource } from './standalone-source.ts';
import { runnerCpuSeconds } from './worker/process-usage.ts';
import { WorkerPool } from './worker/worker-pool.ts';

const logger = createLogger('runner');
// The pool serves every route in Redis; a lambda's image (KUBLAMBDA_STANDALONE_LAMBDA) its one lambda.
const mode = runnerMode(process.env);
let source: RunnerSource;
try {
  source = mode === 'standalone'
    ? await startStandaloneSource(configOrExit(() => parseStandaloneRunnerConfig(process.env), logger), logger)
    : await startPoolSource(configOrExit(() => parseRunnerConfig(process.env), logger), logger);
} catch (error) {
  logger.error('starting failed', { mode, error: describeError(error) });
  process.exit(1);
}
const { serving: config, routes } = source;
// Generic workers spawned ahead of need: a cold start then only loads the lambda's asset.
const pool = new WorkerPool({ size: config.workerPoolSize, onSpawnError: (error) => logger.warn('spawning a pooled worker failed', { error: String(error) }) });
const metrics = createRunnerMetrics({ pooledWorkers: () => pool.available, cpuSeconds: runnerCpuSeconds });
const workers = new LambdaWorkers({
  cache: source.assets,
  metrics,
  logger,
  pool,
  state: source.state,
  envKeys: source.envKeys,
  maxWorkersPerLambda: config.maxWorkersPerLambda,
  workerIdleMs: config.workerIdleMs,
  routeOf: (key) => routes.get(key),
});
await source.follow(workers);

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
  else void serveRequest(request, response, { routes, workers, maxBodyBytes: config.maxBodyBytes, hostSuffix: config.hostSuffix, metrics, logger });
});
server.listen(config.port, config.host);
await new Promise((resolve) => server.once('listening', resolve));
const address = server.address() as { port: number };
logger.info('listening', { mode, host: config.host, port: address.port, routes: routes.size });

await new Promise<void>((resolve) => {
  process.once('SIGTERM', () => resolve());
  process.once('SIGINT', () => resolve());
});
// Finish in-flight requests, then stop the workers.
await new Promise((resolve) => server.close(resolve));
await Promise.all([workers.stopAll(), pool.stop()]);
source.stop();
logger.info('stopped');
process.exit(0);
