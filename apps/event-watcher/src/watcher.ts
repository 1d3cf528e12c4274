import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { resourceEventRequest, resourcePath, RESOURCE_EVENT_TYPES, resourceEventId, type DeadLetter, type ResolvedWatchTrigger } from '@kublambda/watch-triggers';
import { LeaseLostError, type CheckpointStore } from './checkpoint-store.ts';
import type { EventWatcherConfig } from './config.ts';
import { deliverWithRetries } from './deliver-with-retries.ts';
import { filterChange } from './event-filter.ts';
import { apiServerUrl } from './kube-client.ts';
import { uidOf, type ResourceChange } from './kube-object.ts';
import type { LeaseTerm } from './lease-term.ts';
import { OrderedDispatcher } from './ordered-dispatcher.ts';
import type { EventPoster } from '@kublambda/watch-triggers';
import { syncTrigger } from './trigger-sync.ts';
import type { WatcherMetrics } from './watcher-metrics.ts';

/** A change on its way: delivered if it matched, then recorded in the checkpoint either way. */
interface PendingEvent {
  trigger: ResolvedWatchTrigger;
  change: ResourceChange;
  matched: boolean;
  /** When the watcher saw it (ms since epoch): the event's time, and the start of its latency. */
  seenAt: number;
}

export interface WatcherDependencies {
  config: EventWatcherConfig;
  kubeConfig: KubeConfig;
  store: CheckpointStore;
  poster: EventPoster;
  metrics: WatcherMetrics;
  logger: Logger;
}

/** What /readyz reports. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * The event-watcher's work while it holds the lease: list/watch every trigger, filter, deliver
 * in order per object, and move the checkpoint after each event is handled.
 */
export class EventWatcher {
  readonly #deps: WatcherDependencies;
  readonly #source = new Map<number, string>();
  #held = false;
  #synced = new Set<number>();
  #dispatcher: OrderedDispatcher<PendingEvent> | undefined;

  constructor(deps: WatcherDependencies) {
    this.#deps = deps;
    const server = apiServerUrl(deps.kubeConfig);
    for (const trigger of deps.config.watcher.triggers) this.#source.set(trigger.index, server + resourcePath(trigger));
  }

  get leaseHeld(): boolean {
    return this.#held;
  }

  setLeaseHeld(held: boolean): void {
    this.#held = held;
    if (!held) this.#synced = new Set();
  }

  readiness(): Readiness {
    if (!this.#held) return { ready: false, reason: 'waiting for the lease' };
    const syncing = this.#deps.config.watcher.triggers.find((trigger) => !this.#synced.has(trigger.index));
    return syncing ? { ready: false, reason: `syncing trigger ${syncing.index}` } : { ready: true };
  }

  get pendingEvents(): number {
    return this.#dispatcher?.pending ?? 0;
  }

  lagSeconds(now = Date.now()): number {
    let oldest = now;
    for (const event of this.#dispatcher?.items() ?? []) oldest = Math.min(oldest, event.seenAt);
    return (now - oldest) / 1000;
  }

  /** Runs one lease term: returns once term.watching is aborted and deliveries have ended. */
  async runTerm(term: LeaseTerm): Promise<void> {
    const { config, store, logger } = this.#deps;
    const { concurrency } = config.delivery;
    const pendingByTrigger = new Map<number, number>();
    // Progress (a list's or bookmark's resourceVersion) waits until everything before it is handled.
    const progressByTrigger = new Map<number, string>();
    const recordProgressIfCaughtUp = (trigger: ResolvedWatchTrigger) => {
      const resourceVersion = progressByTrigger.get(trigger.index);
      if (!resourceVersion || (pendingByTrigger.get(trigger.index) ?? 0) > 0) return;
      progressByTrigger.delete(trigger.index);
      void store.recordResourceVersion(trigger.id, resourceVersion).catch((error: unknown) => this.#onWriteError(error, term));
    };
    const dispatcher = new OrderedDispatcher<PendingEvent>({
      concurrency,
      // Enough to keep every delivery slot busy through bursts; beyond it the watch stream waits.
      maxPending: Math.max(1_000, concurrency * 32),
      handle: (event) => this.#handle(event, term),
      supersedes,
      onError: (error) => this.#onWriteError(error, term),
      onDone: (event) => {
        pendingByTrigger.set(event.trigger.index, (pendingByTrigger.get(event.trigger.index) ?? 1) - 1);
        recordProgressIfCaughtUp(event.trigger);
      },
    });
    this.#dispatcher = dispatcher;
    try {
      const syncs = config.watcher.triggers.map(async (trigger, i) => {
        const triggerLogger = logger.child({ trigger: trigger.index });
        const [known, resumeFrom] = await untilAborted(Promise.all([store.loadObjects(trigger.id), store.loadResourceVersion(trigger.id)]), term.watching);
        await syncTrigger({
          trigger,
          kubeConfig: this.#deps.kubeConfig,
          known,
          logger: triggerLogger,
          signal: term.watching,
          onRelist: (reason) => this.#deps.metrics.relists.inc({ trigger: trigger.index, reason }),
          resumeFrom,
          onSynced: () => {
            if (this.#synced.has(trigger.index)) return;
            this.#synced.add(trigger.index);
            triggerLogger.info('in sync', { resumedFrom: resumeFrom, objects: known.size });
          },
          onProgress: (resourceVersion) => {
            progressByTrigger.set(trigger.index, resourceVersion);
            recordProgressIfCaughtUp(trigger);
          },
          onChange: async (change) => {
            const event = this.#admit(trigger, config.conditions[i], change, triggerLogger);
            await dispatcher.room();
            if (term.watching.aborted) return;
            pendingByTrigger.set(trigger.index, (pendingByTrigger.get(trigger.index) ?? 0) + 1);
            dispatcher.add(`${trigger.index}/${uidOf(change.object)}`, event);
          },
        });
      });
      await Promise.all(syncs);
    } finally {
      // Queued events are dropped (their checkpoint did not move, so the next term finds them
      // again); the running ones finish, or stop when term.delivering is aborted.
      dispatcher.close();
      await dispatcher.idle();
    }
  }

  #admit(trigger: ResolvedWatchTrigger, condition: EventWatcherConfig['conditions'][number], change: ResourceChange, logger: Logger): PendingEvent {
    const { metrics } = this.#deps;
    const label = { trigger: trigger.index };
    metrics.seen.inc(label);
    const verdict = filterChange(change, trigger.events, condition);
    if (verdict.matched) metrics.matched.inc(label);
    else if (verdict.reason === 'condition-error') {
      metrics.conditionErrors.inc(label);
      logger.warn('the condition failed on an object; counted as not matched', { object: subjectOf(change), uid: uidOf(change.object), error: verdict.error });
    }
    return { trigger, change, matched: verdict.matched, seenAt: Date.now() };
  }

  async #handle(event: PendingEvent, term: LeaseTerm): Promise<void> {
    const { config, poster, metrics, store, logger } = this.#deps;
    const { trigger, change } = event;
    const label = { trigger: trigger.index };
    let deadLetter: DeadLetter | undefined;
    if (event.matched) {
      const source = this.#source.get(trigger.index)!;
      const time = new Date(event.seenAt);
      const request = resourceEventRequest({ ...change, source, time, triggerIndex: trigger.index });
      const result = await deliverWithRetries({
        attempt: (signal) => poster.post(request, signal),
        retry: { attempts: config.delivery.attempts, initialMs: config.delivery.retryInitialMs, maxMs: config.delivery.retryMaxMs },
        signal: term.delivering,
        onRetry: () => metrics.retries.inc(label),
      });
      if (result.delivered) {
        metrics.delivered.inc(label);
        metrics.deliveryDuration.observe(label, (Date.now() - event.seenAt) / 1000);
      } else {
        deadLetter = {
          id: resourceEventId(change.type, change.object),
          type: RESOURCE_EVENT_TYPES[change.type],
          subject: subjectOf(change),
          triggerIndex: trigger.index,
          attempts: result.attempts,
          lastError: result.lastError,
          deadAt: new Date().toISOString(),
          object: change.object,
          source,
          time: time.toISOString(),
        };
        metrics.deadLettered.inc(label);
        logger.warn('delivery failed; event dead-lettered', { trigger: trigger.index, id: deadLetter.id, type: change.type, subject: deadLetter.subject, attempts: result.attempts, lastError: result.lastError });
      }
    }
    // Redis may hang through a reconnect; losing the lease must still end this at once.
    await untilAborted(store.recordHandled(trigger.id, uidOf(change.object), change.type === 'DELETED' ? null : change.object, deadLetter), term.delivering);
  }

  #onWriteError(error: unknown, term: LeaseTerm): void {
    if (term.delivering.aborted) return;
    if (error instanceof LeaseLostError) term.lose('a checkpoint write found the lease taken');
    else {
      // The checkpoint cannot move past this event: stop and start over from the checkpoint.
      this.#deps.logger.error('recording an event in the checkpoint failed', { error: describeError(error) });
      term.lose('the checkpoint could not be written');
    }
  }
}

/**
 * Which queued events a newer one of the same object may replace: one that only moves the
 * checkpoint (filtered out), or a MODIFIED followed by another MODIFIED, both matched. The
 * lambda then sees only the latest state (with that change's oldObject); an ADDED or DELETED
 * is never merged away, and nothing that has started is.
 */
function supersedes(next: PendingEvent, queued: PendingEvent): boolean {
  if (!queued.matched) return true;
  return next.matched && queued.change.type === 'MODIFIED' && next.change.type === 'MODIFIED';
}

function subjectOf(change: ResourceChange): string {
  const { namespace, name } = change.object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
