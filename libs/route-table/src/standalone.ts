import type { RouteEnvEntry, RouteRecord } from './index.ts';

// A lambda's image: the runner base image plus one layer with these files. Started with no
// arguments, the runner in it serves that one lambda (STANDALONE_LAMBDA_ENV names the file),
// on every path, with the same code as the runner pool.

export const STANDALONE_LAMBDA_FILE = '/lambda/lambda.json';
export const STANDALONE_ASSET_FILE = '/lambda/lambda.mjs';
/** Set in the base image's config: the runner serves the lambda this file describes. */
export const STANDALONE_LAMBDA_ENV = 'KUBLAMBDA_STANDALONE_LAMBDA';

/** What lambda.json holds: the route's settings, without env (given at run time), host or path. */
export type StandaloneLambda = Omit<RouteRecord, 'key' | 'pathPrefix' | 'host' | 'env' | 'generation'>;

/** The route the standalone runner serves: every path, with the env the container is given. */
export function standaloneRoute(lambda: StandaloneLambda, env: RouteEnvEntry[]): RouteRecord {
  return { ...lambda, key: `${lambda.namespace}/${lambda.name}`, pathPrefix: '/', env, generation: 0 };
}
