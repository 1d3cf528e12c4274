import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import type { CheckpointStore } from './checkpoint-store.ts';

/** One stretch of time holding the lease. */
export interface LeaseTerm {
  /** Aborted when the watches must stop: the lease is lost, or the process shuts down. */
  watching: AbortSignal;
  /** Aborted when deliveries must stop at once: the lease is lost, or the shutdown grace ran out. */
  delivering: AbortSignal;
  /** Ends the term at once: a fenced write found the lease taken. */
  lose(why: string): void;
}

export interface LeaseOptions {
  store: CheckpointStore;
  durationMs: number;
  renewMs: number;
  /** How long in-flight deliveries may finish after a shutdown is asked for. */
  shutdownGraceMs: number;
  logger: Logger;
  onHeldChange: (held: boolean) => void;
}

/**
 * Holds the lease and runs `work` while it is held, again and again until `stop` aborts. The
 * lease is given up locally before Redis expires it (last successful renewal + duration −
 * margin, measured from before the renewal was sent), so the next holder, who can take it
 * only after the expiry, never delivers at the same time as this one.
 */
export async function runWhileHoldingLease(options: LeaseOptions, work: (term: LeaseTerm) => Promise<void>, stop: AbortSignal): Promise<void> {
  const { store, logger } = options;
  const marginMs = Math.min(2_000, Math.ceil(options.durationMs / 5));
  while (!stop.aborted) {
    const acquiredAt = await acquire(options, stop);
    if (acquiredAt === undefined) return;
    const watching = new AbortController();
    const delivering = new AbortController();
    const lose = (why: string) => {
      if (delivering.signal.aborted) return;
      logger.warn('lease lost: stopping deliveries', { why });
      watching.abort(new Error(why));
      delivering.abort(new Error(why));
    };
    let deadlineTimer: NodeJS.Timeout | undefined;
    const setDeadline = (renewedAt: number) => {
      clearTimeout(deadlineTimer);
      deadlineTimer = setTimeout(() => lose('the lease was not renewed in time'), Math.max(0, renewedAt + options.durationMs - marginMs - Date.now()));
    };
    setDeadline(acquiredAt);
    options.onHeldChange(true);
    logger.info('lease acquired');

    const renewing = (async () => {
      while (!delivering.signal.aborted) {
        await sleep(options.renewMs, undefined, { signal: delivering.signal }).catch(() => undefined);
        if (delivering.signal.aborted) return;
        const sentAt = Date.now();
        try {
          if (await store.renewLease()) setDeadline(sentAt);
          else lose('another watcher holds the lease');
        } catch (error) {
          // The deadline decides; a failed renewal alone is a reason to try again.
          logger.warn('renewing the lease failed', { error: describeError(error) });
        }
      }
    })();
    const onStop = () => {
      watching.abort(new Error('shutting down'));
      setTimeout(() => delivering.abort(new Error('shutdown grace ran out')), options.shutdownGraceMs).unref();
    };
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop();

    let failed = false;
    try {
      await work({ watching: watching.signal, delivering: delivering.signal, lose });
    } catch (error) {
      failed = !delivering.signal.aborted;
      if (failed) logger.error('the watcher stopped with an error', { error: describeError(error) });
    }
    stop.removeEventListener('abort', onStop);
    delivering.abort(new Error('term over'));
    clearTimeout(deadlineTimer);
    await renewing;
    options.onHeldChange(false);
    // Given back at once (if still ours), so a successor need not wait for the expiry.
    await store.releaseLease().catch((error: unknown) => logger.warn('releasing the lease failed', { error: describeError(error) }));
    // A term that failed on its own must not be retried in a tight loop.
    if (failed) await sleep(options.renewMs, undefined, { signal: stop }).catch(() => undefined);
  }
}

/** Tries for the lease every renewal interval; resolves with the time the winning attempt was sent, or undefined once stopped. */
async function acquire(options: LeaseOptions, stop: AbortSignal): Promise<number | undefined> {
  let loggedWaiting = false;
  while (!stop.aborted) {
    const sentAt = Date.now();
    try {
      if (await options.store.tryAcquireLease()) return sentAt;
      if (!loggedWaiting) {
        options.logger.info('waiting for the lease: another watcher of this lambda holds it');
        loggedWaiting = true;
      }
    } catch (error) {
      options.logger.warn('taking the lease failed', { error: describeError(error) });
    }
    await sleep(options.renewMs, undefined, { signal: stop }).catch(() => undefined);
  }
  return undefined;
}
