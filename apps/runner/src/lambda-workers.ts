import { forLambda, type Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { decryptRouteEnv, EnvDecryptionError, type EnvKeyRing, type RouteRecord } from '@kublambda/route-table';
import { executeStateOperation, type StateOutcome, type StateStore } from '@kublambda/state-tables';
import type { AssetCache } from './asset-cache.ts';
import type { RunnerMetrics } from './metrics.ts';
import { LambdaWorkerError, type Cancellation, type LambdaWorker, type WorkerRequest, type WorkerResponse } from './worker/lambda-worker.ts';
import type { WorkerPool } from './worker/worker-pool.ts';

/** One worker process of a lambda, from the moment it is asked for. */
interface WorkerSlot {
  worker: Promise<LambdaWorker>;
  /** Set once started, for the path that need not wait. */
  started?: LambdaWorker;
}

/** The workers serving one version of a lambda: one route record (asset, settings, env). */
interface Running {
  route: RouteRecord;
  slots: WorkerSlot[];
  /** Requests waiting for room, first come first served. */
  waiting: Array<() => void>;
  unpin: () => void;
}

/** How often a request its worker never began is handed to another worker. */
const MAX_REDISPATCHES = 3;

/**
 * The worker's env, Secret values decrypted. A value that cannot be decrypted fails the start
 * (LoadFailed, with the reason): the lambda must not run with a value missing.
 */
function lambdaEnv(route: RouteRecord, keys: EnvKeyRing): Record<string, string> {
  try {
    return decryptRouteEnv(route, keys);
  } catch (error) {
    if (!(error instanceof EnvDecryptionError)) throw error;
    // The message says it all; the cipher's own error ("unable to authenticate data") adds nothing.
    throw new LambdaWorkerError('LoadFailed', `${error.message}; the lambda cannot start without it`);
  }
}

/** Where workers get assets: the cache of the artifact store's, or the standalone runner's one file. */
export type AssetSource = Pick<AssetCache, 'path' | 'pin'>;

export interface LambdaWorkersOptions {
  cache: AssetSource;
  metrics: RunnerMetrics;
  logger: Logger;
  /** Workers come from the pool, so a cold start mostly skips spawning a process. */
  pool: WorkerPool;
  /** Where the lambdas' state tables live; the runner performs their operations. */
  state: StateStore;
  /** Decrypts the env values route records hold encrypted. */
  envKeys: EnvKeyRing;
  /** Most worker processes one lambda gets on this runner. */
  maxWorkersPerLambda: number;
  /** The lambda's route as the runner knows it now. */
  routeOf: (key: string) => RouteRecord | undefined;
  /** A worker with no request for this long is stopped: an idle lambda costs nothing. */
  workerIdleMs: number;
}

/**
 * The warm workers of each lambda: one to start with, another (up to maxWorkersPerLambda) when
 * every one has spec.concurrency requests in flight, since one process uses one core. A route
 * with a new asset or settings gets new workers; the old ones finish their in-flight requests
 * before they stop. A dead worker is replaced on the next request.
 */
export class LambdaWorkers {
  readonly #running = new Map<string, Running>();
  readonly #cache: AssetSource;
  readonly #logger: Logger;
  readonly #metrics: RunnerMetrics;
  readonly #pool: WorkerPool;
  readonly #state: StateStore;
  readonly #envKeys: EnvKeyRing;
  readonly #maxWorkersPerLambda: number;
  readonly #routeOf: (key: string) => RouteRecord | undefined;
  readonly #workerIdleMs: number;
  readonly #idleSweep: NodeJS.Timeout;

  constructor(options: LambdaWorkersOptions) {
    this.#cache = options.cache;
    this.#pool = options.pool;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#state = options.state;
    this.#envKeys = options.envKeys;
    this.#maxWorkersPerLambda = options.maxWorkersPerLambda;
    this.#routeOf = options.routeOf;
    this.#workerIdleMs = options.workerIdleMs;
    this.#idleSweep = setInterval(() => this.#stopIdleWorkers(), Math.min(30_000, Math.max(100, options.workerIdleMs / 2))).unref();
  }

  /**
   * Hands the request to a worker of the route's version: a warm one with room, else a new one
   * while the lambda has fewer than the maximum (the request waits for it to start), else it
   * waits for room, as long as the lambda's timeout and behind at most as many requests as the
   * workers hold. Rejects like LambdaWorker.invoke, with Overloaded when the wait is full or
   * runs out, or with LoadFailed when the lambda's worker cannot start.
   */
  invoke(route: RouteRecord, request: WorkerRequest): Promise<WorkerResponse> {
    const choice = this.#choose(route);
    // Chosen and invoked in one go, so no other request takes the room in between.
    const response = choice.worker ? choice.worker.invoke(request) : this.#invokeAfterWaiting(route, request);
    return response.catch((error: unknown) => this.#invokeAgain(error, route, request, 1));
  }

  /**
   * A request whose worker went away before beginning it (killed for another request's blocked
   * event loop, memory or CPU) goes to another worker, a few times at most: the lambda has not
   * seen it. Any other failure is the request's.
   */
  async #invokeAgain(error: unknown, route: RouteRecord, request: WorkerRequest, attempt: number): Promise<WorkerResponse> {
    const latest = this.#routeOf(route.key);
    if (!(error instanceof LambdaWorkerError) || !error.notStarted || attempt > MAX_REDISPATCHES || !latest) throw error;
    try {
      return await this.#invokeAfterWaiting(latest, request);
    } catch (next) {
      return this.#invokeAgain(next, latest, request, attempt + 1);
    }
  }

  /** Choosing again is harmless: it finds the worker the first choice started, or no room again. */
  async #invokeAfterWaiting(route: RouteRecord, request: WorkerRequest): Promise<WorkerResponse> {
    // One deadline for all the waiting, however often the request has to choose again.
    const waitDeadline = Date.now() + route.timeoutSeconds * 1000;
    // Counted while it waits (the autoscaler tells a queue from demand by it); the finally runs
    // as soon as the request is handed to a worker, not when the worker answers.
    this.#metrics.waiting.inc();
    try {
      for (let current = route; ; ) {
        const choice = this.#choose(current);
        if (choice.worker) return choice.worker.invoke(request);
        if (choice.starting) await choice.starting;
        else await waitForRoom(choice.full, current, waitDeadline, request.cancellation);
        // The route may have changed while the request waited: it goes to the version now served.
        const latest = this.#routeOf(route.key);
        if (!latest) throw new LambdaWorkerError('WorkerExited', `lambda ${route.key}: its route was removed while the request waited`);
        current = latest;
      }
    } finally {
      this.#metrics.waiting.dec();
    }
  }

  #choose(route: RouteRecord): { worker: LambdaWorker } | { worker?: undefined; starting: Promise<LambdaWorker> } | { worker?: undefined; starting?: undefined; full: Running } {
    let current = this.#running.get(route.key);
    if (current && current.route !== route) {
      this.#retire(route.key, current, 'new version');
      current = undefined;
    }
    if (!current) {
      current = { route, slots: [], waiting: [], unpin: this.#cache.pin(route.artifact.digest) };
      this.#running.set(route.key, current);
    }
    // Workers that died no longer count; they are replaced as needed.
    if (current.slots.some((slot) => slot.started && !slot.started.alive)) current.slots = current.slots.filter((slot) => !slot.started || slot.started.alive);
    const warm = leastBusy(current.slots, route.concurrency);
    if (warm) return { worker: warm };
    const starting = current.slots.find((slot) => !slot.started);
    if (starting) return { starting: starting.worker };
    if (current.slots.length < this.#maxWorkersPerLambda) return { starting: this.#startSlot(route, current).worker };
    return { full: current };
  }

  /** Stops the workers of a lambda whose route is gone. */
  forget(key: string): void {
    const current = this.#running.get(key);
    if (current) this.#retire(key, current, 'route removed');
  }

  async stopAll(): Promise<void> {
    clearInterval(this.#idleSweep);
    const all = [...this.#running.entries()];
    for (const [key, running] of all) this.#retire(key, running, 'runner stopping');
    await Promise.all(all.flatMap(([, running]) => running.slots.map((slot) => slot.worker.then((worker) => worker.stop(), () => undefined))));
  }

  #startSlot(route: RouteRecord, running: Running): WorkerSlot {
    const log = forLambda(this.#logger, route);
    const worker = (async () => {
      const coldStart = this.#metrics.coldStarts.startTimer({ namespace: route.namespace, lambda: route.name });
      // Before the asset is fetched: a lambda whose env cannot be decrypted fails at once.
      const env = lambdaEnv(route, this.#envKeys);
      const assetPath = await this.#cache.path(route.artifact.digest);
      const started = await this.#pool.take({
        assetPath,
        limits: {
          memoryMiB: route.memoryMiB,
          // Records published before these fields existed have neither.
          network: route.network ?? 'outbound',
          cpuMillis: route.cpuMillis,
          timeoutSeconds: route.timeoutSeconds,
          concurrency: route.concurrency,
        },
        env,
        lambda: { namespace: route.namespace, name: route.name },
        onLog: (line) => log.info(line.text, { stream: line.stream, requestId: line.requestId, source: 'lambda' }),
        performStateOperation: (operation, requestId) => this.#performStateOperation(route, operation, requestId),
        onRequestFinished: () => running.waiting.shift()?.(),
      });
      log.info('cold start', { seconds: coldStart(), workers: running.slots.length });
      return started;
    })();
    const slot: WorkerSlot = { worker };
    running.slots.push(slot);
    worker.then(
      (started) => (slot.started = started),
      (error: unknown) => {
        log.warn('worker failed to start', { error: describeError(error) });
        running.slots = running.slots.filter((other) => other !== slot);
      },
    );
    return slot;
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

  #stopIdleWorkers(): void {
    const now = Date.now();
    for (const [key, running] of this.#running) {
      const idle = running.slots.filter(({ started }) => started?.alive && started.inFlight === 0 && now - started.idleSinceMs >= this.#workerIdleMs);
      if (idle.length === 0) continue;
      if (idle.length === running.slots.length && running.waiting.length === 0) {
        this.#retire(key, running, 'idle');
        continue;
      }
      // Busy lambdas keep the workers they use and give back the ones they no longer need.
      running.slots = running.slots.filter((slot) => !idle.includes(slot));
      for (const { started } of idle) void started!.stop();
    }
  }

  #retire(key: string, running: Running, reason: 'new version' | 'route removed' | 'idle' | 'runner stopping'): void {
    if (this.#running.get(key) === running) this.#running.delete(key);
    // They choose again, among the workers of the version that replaces this one.
    for (const wake of running.waiting.splice(0)) wake();
    void Promise.all(running.slots.map((slot) => slot.worker.then((worker) => worker.stop(), () => undefined))).finally(() => {
      running.unpin();
      forLambda(this.#logger, running.route).info('retired workers', { reason, digest: running.route.artifact.digest, workers: running.slots.length });
    });
  }
}

/**
 * Resolves when a worker of the lambda has room again; rejects with Overloaded when the wait is
 * full or the deadline passes, or with ClientClosed when the client goes away meanwhile.
 */
async function waitForRoom(running: Running, route: RouteRecord, deadline: number, cancellation: Cancellation | undefined): Promise<void> {
  const label = `lambda ${route.key}`;
  const capacity = running.slots.length * route.concurrency;
  if (running.waiting.length >= capacity) {
    throw new LambdaWorkerError('Overloaded', `${label}: ${capacity} requests in flight and ${running.waiting.length} waiting, the most this runner takes`);
  }
  const room = Promise.withResolvers<void>();
  running.waiting.push(room.resolve);
  const giveUp = (error: LambdaWorkerError) => {
    running.waiting = running.waiting.filter((wake) => wake !== room.resolve);
    room.reject(error);
  };
  const timer = setTimeout(
    () => giveUp(new LambdaWorkerError('Overloaded', `${label}: no room within ${route.timeoutSeconds} s (${capacity} requests in flight)`)),
    Math.max(0, deadline - Date.now()),
  );
  if (cancellation) cancellation.onCancel = () => giveUp(new LambdaWorkerError('ClientClosed', `${label}: the client went away while the request waited`));
  try {
    await room.promise;
  } finally {
    clearTimeout(timer);
    if (cancellation) cancellation.onCancel = undefined;
  }
}

/** The started worker taking requests with the fewest in flight, if it has room for one more. */
function leastBusy(slots: WorkerSlot[], concurrency: number): LambdaWorker | undefined {
  let best: LambdaWorker | undefined;
  for (const { started } of slots) {
    if (started?.accepting && started.inFlight < concurrency && (!best || started.inFlight < best.inFlight)) best = started;
  }
  return best;
}
