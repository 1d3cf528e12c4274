import http from 'node:http';
import { createArtifactStore } from '@kublambda/artifact-store';
import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { AssetCache } from './asset-cache.ts';
import { parseRunnerConfig } from './config.ts';
import { followRoutes } from './follow-routes.ts';
import { LambdaWorkers } from './lambda-workers.ts';
import { RouteMatcher } from './route-matcher.ts';
import { serveRequest } from './serve-request.ts';

const logger = createLogger('runner');
const config = configOrExit(() => parseRunnerConfig(process.env), logger);
const store = await createArtifactStore(config.artifactStore);
const cache = new AssetCache({ dir: config.assetCacheDir, maxBytes: config.assetCacheMaxBytes, store });
await cache.init();
const routes = new RouteMatcher();
const workers = new LambdaWorkers(cache, logger);
const follower = followRoutes(config.redisUrl, routes, logger);
await follower.loaded;

const server = http.createServer((request, response) => {
  void serveRequest(request, response, { routes, workers, maxBodyBytes: config.maxBodyBytes, logger });
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
await workers.stopAll();
logger.info('stopped');
process.exit(0);
