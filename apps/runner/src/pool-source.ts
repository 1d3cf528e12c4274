// The runner pool: every route record in Redis, followed; assets from the artifact store through
// the asset cache; state tables in Redis.
import { createArtifactStore } from '@kublambda/artifact-store';
import { forLambda, type Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { connectStateRedis, createStateStore } from '@kublambda/state-tables';
import { AssetCache } from './asset-cache.ts';
import type { RunnerConfig } from './config.ts';
import { followRoutes, type RouteFollower } from './follow-routes.ts';
import { RouteMatcher } from './route-matcher.ts';
import type { RunnerSource } from './runner-source.ts';

export async function startPoolSource(config: RunnerConfig, logger: Logger): Promise<RunnerSource> {
  const store = await createArtifactStore(config.artifactStore);
  const cache = new AssetCache({ dir: config.assetCacheDir, maxBytes: config.assetCacheMaxBytes, store });
  await cache.init();
  const stateRedis = await connectStateRedis(config.redisUrl, (error) => logger.warn('state store connection error', { error: describeError(error) }));
  const routes = new RouteMatcher();
  let follower: RouteFollower | undefined;
  return {
    serving: config,
    routes,
    assets: cache,
    state: createStateStore(stateRedis, { writeConfirmation: config.redisWriteConfirmation }),
    envKeys: config.envKeys,
    follow: async (workers) => {
      follower = followRoutes(config.redisUrl, routes, logger, {
        // A new asset is fetched when announced, so the lambda's first request does not wait for it.
        onPublished: (route) => void cache.path(route.artifact.digest).catch((error: unknown) => forLambda(logger, route).warn('prefetching the asset failed', { error: String(error) })),
        // A lambda whose route is gone gets no more requests: its worker stops.
        onRemoved: (key) => workers.forget(key),
      });
      await follower.loaded;
    },
    stop: () => {
      follower?.stop();
      stateRedis.disconnect();
    },
  };
}
