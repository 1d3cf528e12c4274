// Where a runner's routes, assets and state come from: the pool's (Redis route records, the
// artifact store, Redis state) or a standalone runner's (one lambda from its image). Everything
// else (serveRequest, LambdaWorkers, the worker pool, limits, metrics) is the same for both.
import type { EnvKeyRing } from '@kublambda/route-table';
import type { StateStore } from '@kublambda/state-tables';
import type { ServingConfig } from './config.ts';
import type { AssetSource, LambdaWorkers } from './lambda-workers.ts';
import type { RouteMatcher } from './route-matcher.ts';

export interface RunnerSource {
  serving: ServingConfig;
  routes: RouteMatcher;
  assets: AssetSource;
  state: StateStore;
  envKeys: EnvKeyRing;
  /** Keeps the routes current (and the workers of a removed route stopped); resolves once they are loaded. */
  follow(workers: LambdaWorkers): Promise<void>;
  /** Closes the connections; the workers are the caller's to stop. */
  stop(): void;
}
