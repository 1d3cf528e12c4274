import { forLambda, type Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import type { RouteRecord } from '@kublambda/route-table';
import { executeStateOperation, type StateOutcome, type StateStore } from '@kublambda/state-tables';
import type { AssetCache } from './asset-cache.ts';
import type { RunnerMetrics } from './metrics.ts';
import type { LambdaWorker } from './worker/lambda-worker.ts';
import type { WorkerPool } from './worker/worker-pool.ts';

interface Running {
  digest: string;
  generation: number;
  worker: Promise<LambdaWorker>;
  /** The worker once started, for the path that need not wait. */
  started?: LambdaWorker;
  unpin: () => void;
}

/** The lambda's literal env values; valueFrom references are resolved by the platform later. */
function literalEnv(route: RouteRecord): Record<string, string> {
  return Object.fromEntries(route.env.flatMap((entry) => (entry.value !== undefined ? [[entry.name, entry.value]] : [])));
}

/**
 * One warm worker per lambda. A route with a new asset or settings gets a new worker; the old
 * one finishes its in-flight requests before it stops. A dead worker is replaced on the next
 * request.
 */
export interface LambdaWorkersOptions {
  cache: AssetCache;
  metrics: RunnerMetrics;
  logger: Logger;
  /** Workers come from the pool, so a cold start mostly skips spawning a process. */
  pool: WorkerPool;
  /** Where the lambdas' state tables live; the runner performs their operations. */
  state: StateStore;
}

export class LambdaWorkers {
  readonly #running = new Map<string, Running>();
  readonly #cache: AssetCache;
  readonly #logger: Logger;
  readonly #metrics: RunnerMetrics;
  readonly #pool: WorkerPool;
  readonly #state: StateStore;

  constructor(options: LambdaWorkersOptions) {
    this.#cache = options.cache;
    this.#pool = options.pool;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#state = options.state;
  }

  /** The lambda's worker when it is started, alive and serves the route's version; no waiting. */
  warmWorkerFor(route: RouteRecord): LambdaWorker | undefined {
    const current = this.#running.get(route.key);
    const worker = current?.started;
    return worker?.alive && current!.digest === route.artifact.digest && current!.generation === route.generation ? worker : undefined;
  }

  async workerFor(route: RouteRecord): Promise<LambdaWorker> {
    const current = this.#running.get(route.key);
    if (current && current.digest === route.artifact.digest && current.generation === route.generation) {
      const worker = await current.worker.catch(() => undefined);
      if (worker?.alive) return worker;
      if (this.#running.get(route.key) === current) this.#retire(route.key, current);
      else return this.workerFor(route);
    } else if (current) {
      this.#retire(route.key, current);
    }
    const started = this.#start(route);
    this.#running.set(route.key, started);
    return started.worker;
  }

  /** Stops the worker of a lambda whose route is gone. */
  forget(key: string): void {
    const current = this.#running.get(key);
    if (current) this.#retire(key, current);
  }

  async stopAll(): Promise<void> {
    const all = [...this.#running.entries()];
    for (const [key, running] of all) this.#retire(key, running);
    await Promise.all(all.map(([, running]) => running.worker.then((w) => w.stop(), () => undefined)));
  }

  #start(route: RouteRecord): Running {
    const unpin = this.#cache.pin(route.artifact.digest);
    const log = forLambda(this.#logger, route);
    const worker = (async () => {
      const coldStart = this.#metrics.coldStarts.startTimer({ namespace: route.namespace, lambda: route.name });
      const assetPath = await this.#cache.path(route.artifact.digest);
      const started = await this.#pool.take({
        assetPath,
        limits: { memoryMiB: route.memoryMiB, timeoutSeconds: route.timeoutSeconds, concurrency: route.concurrency },
        env: literalEnv(route),
        lambda: { namespace: route.namespace, name: route.name },
        onLog: (line) => log.info(line.text, { stream: line.stream, requestId: line.requestId, source: 'lambda' }),
        performStateOperation: (operation, requestId) => this.#performStateOperation(route, operation, requestId),
      });
      log.info('cold start', { seconds: coldStart() });
      return started;
    })();
    const running: Running = { digest: route.artifact.digest, generation: route.generation, worker, unpin };
    worker.then(
      (started) => (running.started = started),
      (error: unknown) => log.warn('worker failed to start', { error: String(error) }),
    );
    return running;
  }

  /** Expected failures (a conflict, an undeclared table, Redis away) are the lambda's to handle. */
  async #performStateOperation(route: RouteRecord, operation: unknown, requestId: string | undefined): Promise<StateOutcome> {
    try {
      return await executeStateOperation(this.#state, route.stateTables, route.namespace, operation);
    } catch (error) {
      forLambda(this.#logger, route, requestId).error('state operation failed', { error: describeError(error) });
      return { ok: false, error: { code: 'StateUnavailable', message: `the runner failed to perform the state operation (request ${requestId ?? 'none'})` } };
    }
  }

  #retire(key: string, running: Running): void {
    if (this.#running.get(key) === running) this.#running.delete(key);
    const [namespace = '', name = ''] = key.split('/');
    void running.worker
      .then((worker) => worker.stop(), () => undefined)
      .finally(() => {
        running.unpin();
        forLambda(this.#logger, { namespace, name }).info('retired worker', { digest: running.digest });
      });
  }
}
