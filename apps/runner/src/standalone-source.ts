// A standalone runner (a lambda's image): the one lambda of lambda.json on every path, its
// verified asset from the file beside it, its env from LAMBDA_ENV_* variables; state tables in
// Redis when REDIS_URL is given, else every state operation fails with StateUnavailable.
import { randomBytes } from 'node:crypto';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { EnvKeyRing, standaloneRoute } from '@kublambda/route-table';
import { connectStateRedis, createStateStore, StateError, type StateStore } from '@kublambda/state-tables';
import type { StandaloneRunnerConfig } from './config.ts';
import { RouteMatcher } from './route-matcher.ts';
import type { RunnerSource } from './runner-source.ts';
import { loadStandaloneLambda } from './standalone-lambda.ts';

export const NO_STATE_STORE_MESSAGE = 'the standalone runner has no state store: start it with REDIS_URL to use state tables';

/** Every operation fails as Redis being away does, with a message saying why. */
export const unavailableStateStore: StateStore = {
  table: () => {
    throw new StateError('StateUnavailable', NO_STATE_STORE_MESSAGE);
  },
};

export async function startStandaloneSource(config: StandaloneRunnerConfig, logger: Logger): Promise<RunnerSource> {
  const { lambda, assets } = await loadStandaloneLambda(config.lambdaFile);
  const routes = new RouteMatcher();
  routes.put(standaloneRoute(lambda, config.lambdaEnv));
  const stateRedis = config.redisUrl
    ? await connectStateRedis(config.redisUrl, (error) => logger.warn('state store connection error', { error: describeError(error) }))
    : undefined;
  return {
    serving: config,
    routes,
    assets,
    state: stateRedis ? createStateStore(stateRedis) : unavailableStateStore,
    // The env values are literal: nothing here was encrypted, and a ring of one random key decrypts nothing.
    envKeys: new EnvKeyRing([{ id: 'standalone', key: randomBytes(32) }]),
    // The route never changes: nothing to follow.
    follow: async () => undefined,
    stop: () => stateRedis?.disconnect(),
  };
}
