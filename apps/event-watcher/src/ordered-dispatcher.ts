// Runs work items in order per key (one object's events one after another), different keys
// in parallel up to a limit, with a bound on what may wait so memory stays bounded.

export interface OrderedDispatcherOptions<T> {
  concurrency: number;
  /** Items held (queued and running); room() waits while the dispatcher holds this many. */
  maxPending: number;
  handle: (item: T) => Promise<void>;
  /**
   * Whether a queued item that has not started may be dropped because the next one of the same
   * key makes it redundant; absent = never.
   */
  supersedes?: (next: T, queued: T) => boolean;
  onError: (error: unknown, item: T) => void;
  /** Called once per item when it leaves: handled, superseded or dropped on close. */
  onDone?: (item: T) => void;
}

export class OrderedDispatcher<T> {
  readonly #options: OrderedDispatcherOptions<T>;
  readonly #queues = new Map<string, T[]>();
  /** Keys with queued items and nothing running, in the order they became ready. */
  readonly #ready: string[] = [];
  readonly #running = new Set<string>();
  #pending = 0;
  #closed = false;
  #roomWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];

  constructor(options: OrderedDispatcherOptions<T>) {
    this.#options = options;
  }

  /** Items queued or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Every item held, running ones first per key (for the lag gauge). */
  *items(): Iterable<T> {
    for (const queue of this.#queues.values()) yield* queue;
  }

  /** Resolves once another item may be added without passing maxPending. */
  async room(): Promise<void> {
    while (this.#pending >= this.#options.maxPending && !this.#closed) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.#pending > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  add(key: string, item: T): void {
    if (this.#closed) return;
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = [];
      this.#queues.set(key, queue);
      this.#ready.push(key);
    }
    // The head of a running key is in flight and stays; only items waiting behind it may go.
    const last = queue.at(-1);
    const lastStarted = this.#running.has(key) && queue.length === 1;
    if (last !== undefined && !lastStarted && this.#options.supersedes?.(item, last)) {
      queue[queue.length - 1] = item;
      this.#options.onDone?.(last);
    } else {
      queue.push(item);
      this.#pending++;
    }
    this.#pump();
  }

  /** Starts nothing more; what runs finishes (or is aborted by its own signal), what waits is dropped. */
  close(): void {
    this.#closed = true;
    for (const [key, queue] of this.#queues) {
      const dropped = this.#running.has(key) ? queue.splice(1) : queue.splice(0);
      this.#pending -= dropped.length;
      for (const item of dropped) this.#options.onDone?.(item);
      if (queue.length === 0) this.#queues.delete(key);
    }
    this.#ready.length = 0;
    this.#wake();
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < this.#options.concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      this.#run(key, this.#queues.get(key)![0]!);
    }
  }

  #run(key: string, item: T): void {
    this.#running.add(key);
    void this.#options
      .handle(item)
      .catch((error: unknown) => this.#options.onError(error, item))
      .finally(() => {
        this.#running.delete(key);
        const queue = this.#queues.get(key)!;
        queue.shift();
        this.#pending--;
        this.#options.onDone?.(item);
        if (queue.length === 0) this.#queues.delete(key);
        else if (!this.#closed) this.#ready.push(key);
        this.#wake();
        this.#pump();
      });
  }

  #wake(): void {
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
    if (this.#pending === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
