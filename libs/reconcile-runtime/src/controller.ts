import type { Logger } from '@kublambda/logging';
import { TerminalError, describeError } from './errors.ts';
import { WorkQueue } from './work-queue.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this long, even if nothing changes (polling). */
  requeueAfterMs?: number;
  /**
   * The object waits on something that may appear any time (a Secret it names): reconcile it
   * again after the key's backoff delay, capped at this, counting on until a pass returns
   * without it. Unlike a thrown error, this is not logged as a failure.
   */
  backoffUpToMs?: number;
}

/** Brings one object to its desired state. Throwing requeues the key with backoff; TerminalError does not. */
export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

export interface ReconcileWorkers {
  /** Stops taking keys and waits for in-flight reconciles to finish. */
  stop(): Promise<void>;
}

/** Runs `concurrency` workers that take keys from the queue and reconcile them. */
export function startReconcileWorkers(options: { queue: WorkQueue; reconcile: Reconcile; concurrency: number; logger: Logger }): ReconcileWorkers {
  const { queue, reconcile, logger } = options;
  const worker = async () => {
    for (let key = await queue.take(); key !== undefined; key = await queue.take()) {
      try {
        const result = await reconcile(key);
        if (result?.backoffUpToMs !== undefined) {
          queue.addRateLimited(key, result.backoffUpToMs);
        } else {
          queue.forget(key);
          if (result?.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
        }
      } catch (error) {
        if (error instanceof TerminalError) {
          queue.forget(key);
          logger.error('reconcile failed; not retrying', { key, error: error.message });
        } else {
          const retryInMs = queue.addRateLimited(key);
          logger.warn('reconcile failed; retrying', { key, error: describeError(error), retryInMs, failures: queue.failures(key) });
        }
      } finally {
        queue.done(key);
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  return {
    stop: async () => {
      queue.shutDown();
      await Promise.all(workers);
    },
  };
}
