export interface WorkQueueOptions {
  /** First retry delay after a failure; doubles with each consecutive failure. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Delay before the next retry of a key that failed `failures` times in a row. */
export function backoffDelay(failures: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, failures - 1));
}

/**
 * A queue of keys to reconcile, with the guarantees controllers rely on: a key waiting in the
 * queue is held once however often it is added; a key is handed to one worker at a time, and
 * one added while it is being processed comes back once that finishes; failures are retried
 * with per-key exponential backoff until forgotten.
 */
export class WorkQueue {
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #ready: string[] = [];
  readonly #waiting = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #addedWhileProcessing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #takers: Array<(key: string | undefined) => void> = [];
  #shutDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#baseDelayMs = options.baseDelayMs ?? 5;
    this.#maxDelayMs = options.maxDelayMs ?? 16 * 60_000;
  }

  add(key: string): void {
    if (this.#shutDown || this.#waiting.has(key)) return;
    if (this.#processing.has(key)) {
      this.#addedWhileProcessing.add(key);
      return;
    }
    this.#waiting.add(key);
    const taker = this.#takers.shift();
    if (taker) taker(this.#claim(key));
    else this.#ready.push(key);
  }

  /** Adds the key after a delay; an earlier pending delayed add wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shutDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    this.#timers.set(key, { at, timer });
  }

  /** Adds the key after its backoff delay, and counts the failure. Returns the delay. */
  addRateLimited(key: string, maxDelayMs = this.#maxDelayMs): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelay(failures, this.#baseDelayMs, Math.min(maxDelayMs, this.#maxDelayMs));
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count: its next failure starts from the base delay. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  get length(): number {
    return this.#ready.length;
  }

  /** The next key to process, waiting for one; undefined once the queue is shut down. */
  take(): Promise<string | undefined> {
    const key = this.#ready.shift();
    if (key !== undefined) return Promise.resolve(this.#claim(key));
    if (this.#shutDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** Marks a taken key finished; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#addedWhileProcessing.delete(key)) this.add(key);
  }

  /** Stops handing out keys; waiting takers get undefined. Keys being processed may finish. */
  shutDown(): void {
    this.#shutDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#ready.length = 0;
    for (const taker of this.#takers.splice(0)) taker(undefined);
  }

  #claim(key: string): string {
    this.#waiting.delete(key);
    this.#processing.add(key);
    return key;
  }
}
