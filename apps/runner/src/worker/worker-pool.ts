// Generic workers spawned ahead of need, so that a lambda's cold start only copies its asset and
// imports it: the process start (most of a cold start) has already happened.
import { LambdaWorker, profileKey, type LambdaWorkerOptions, type WorkerProfile } from './lambda-worker.ts';

export interface WorkerPoolOptions {
  /** Unloaded workers kept ready; 0 disables the pool. Default 2. */
  size?: number;
  /** The profile the pooled workers are spawned with; other profiles get one spare each (see take). Default 128 MiB, outbound network. */
  profile?: WorkerProfile;
  /** The env the workers are spawned with, replaced by the lambda's on load. Default none. */
  spawnEnv?: Record<string, string>;
  /** Called when spawning a worker for the pool fails; the pool tries again on the next take. */
  onSpawnError?: (error: unknown) => void;
}

/** Other profiles that get a worker spawned ahead: the most recently asked for. */
const SPARE_PROFILES = 4;
/** The longest a refill waits for the taken worker's first answer (see #afterFirstAnswer). */
const REFILL_WAIT_MS = 100;

export class WorkerPool {
  readonly #size: number;
  readonly #profile: WorkerProfile;
  readonly #spawnEnv: Record<string, string>;
  readonly #onSpawnError: (error: unknown) => void;
  readonly #idle: LambdaWorker[] = [];
  readonly #spawning = new Set<Promise<void>>();
  /** One worker spawned ahead for each other profile lambdas asked for lately, by profile key, oldest first. */
  readonly #spares = new Map<string, Promise<LambdaWorker | undefined>>();
  #stopped = false;

  constructor(options: WorkerPoolOptions = {}) {
    this.#size = options.size ?? 2;
    this.#profile = options.profile ?? { memoryMiB: 128, network: 'outbound' };
    this.#spawnEnv = options.spawnEnv ?? {};
    this.#onSpawnError = options.onSpawnError ?? (() => undefined);
    this.#refill();
  }

  /** Started, warmed-up workers ready to be taken. */
  get available(): number {
    return this.#idle.length;
  }

  /**
   * A worker serving the lambda: a pooled one loaded with it when its profile (memory, network)
   * is the pool's and one is ready, else a spare for its profile, else one started for it.
   * Rejects like LambdaWorker.start.
   */
  async take(options: LambdaWorkerOptions): Promise<LambdaWorker> {
    if (this.#stopped) return LambdaWorker.start(options);
    if (profileKey(options.limits) !== profileKey(this.#profile)) return this.#takeSpare(options);
    let worker = this.#takeIdle();
    // One already starting is ready sooner than a new one.
    if (!worker && this.#spawning.size > 0) {
      await Promise.race(this.#spawning);
      worker = this.#takeIdle();
    }
    let taken: LambdaWorker | undefined;
    try {
      taken = await (worker ? worker.load(options) : LambdaWorker.start(options));
      return taken;
    } finally {
      this.#afterFirstAnswer(taken, () => this.#refill());
    }
  }

  /** Stops the unloaded workers, those still being spawned included; taken ones are their owners'. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const spares = [...this.#spares.values()];
    this.#spares.clear();
    await Promise.all(this.#spawning);
    await Promise.all([...this.#idle.splice(0).map((worker) => worker.stop()), ...spares.map((spare) => spare.then((worker) => worker?.stop()))]);
  }

  /**
   * A lambda with another profile gets the spare spawned for that profile after the last such
   * lambda, else one started for it; then the next spare for that profile is spawned.
   */
  async #takeSpare(options: LambdaWorkerOptions): Promise<LambdaWorker> {
    const profile: WorkerProfile = { memoryMiB: options.limits.memoryMiB, network: options.limits.network ?? 'outbound' };
    const key = profileKey(profile);
    const spare = await this.#spares.get(key);
    this.#spares.delete(key);
    let taken: LambdaWorker | undefined;
    try {
      taken = await (spare?.unloaded ? spare.load(options) : LambdaWorker.start(options));
      return taken;
    } finally {
      this.#afterFirstAnswer(taken, () => this.#spawnSpare(key, profile));
    }
  }

  /**
   * Spawning blocks this event loop for several milliseconds (the fork and exec of a process), and
   * the process then competes for the CPU while it boots: neither must delay the cold start that
   * took a worker. So the pool spawns once the taken worker has answered the request it was taken
   * for (in the turn after, when the answer has gone out), or after REFILL_WAIT_MS at most; at
   * once when the take failed.
   */
  #afterFirstAnswer(taken: LambdaWorker | undefined, spawn: () => void) {
    if (!taken) return spawn();
    let spawned = false;
    const spawnOnce = () => {
      if (spawned) return;
      spawned = true;
      clearTimeout(timer);
      setImmediate(spawn);
    };
    const timer = setTimeout(spawnOnce, REFILL_WAIT_MS).unref();
    void taken.nextIdle().then(spawnOnce);
  }

  #spawnSpare(key: string, profile: WorkerProfile) {
    if (this.#stopped || this.#size === 0) return;
    this.#spares.set(
      key,
      LambdaWorker.spawn(profile, this.#spawnEnv).catch((error: unknown) => {
        this.#onSpawnError(error);
        return undefined;
      }),
    );
    for (const [oldest, spare] of this.#spares) {
      if (this.#spares.size <= SPARE_PROFILES) break;
      this.#spares.delete(oldest);
      void spare.then((worker) => worker?.stop());
    }
  }

  #takeIdle(): LambdaWorker | undefined {
    let worker = this.#idle.shift();
    while (worker && !worker.unloaded) worker = this.#idle.shift();
    return worker;
  }

  #refill() {
    while (!this.#stopped && this.#idle.length + this.#spawning.size < this.#size) {
      const spawning: Promise<void> = LambdaWorker.spawn(this.#profile, this.#spawnEnv)
        .then(
          (worker) => {
            if (this.#stopped) return worker.stop();
            this.#idle.push(worker);
            // One that dies while waiting is dropped; the next take refills.
            void worker.exited.then(() => {
              const index = this.#idle.indexOf(worker);
              if (index >= 0) this.#idle.splice(index, 1);
            });
          },
          (error: unknown) => this.#onSpawnError(error),
        )
        .finally(() => this.#spawning.delete(spawning));
      this.#spawning.add(spawning);
    }
  }
}
