import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { resourcePath, type ResolvedWatchTrigger } from '@kublambda/watch-triggers';
import { KubeStatusError, isGone, listPage, watchEvents } from './kube-client.ts';
import { resourceVersionOf, uidOf, type KubeObject, type ResourceChange } from './kube-object.ts';
import { diffRelist } from './relist-diff.ts';
import { backoffWithJitter } from './retry-policy.ts';

const LIST_PAGE_SIZE = 500;
const WATCH_TIMEOUT_SECONDS = 300;
const WATCH_TIMEOUT_JITTER_SECONDS = 60;

export interface TriggerSyncOptions {
  trigger: ResolvedWatchTrigger;
  kubeConfig: KubeConfig;
  /** Each object's last state seen (the checkpoint at start): the oldObject of the next change. Updated here. */
  known: Map<string, KubeObject>;
  /** Takes one change; waiting here pauses reading the watch (back-pressure). */
  onChange: (change: ResourceChange) => Promise<void>;
  /**
   * The checkpoint's resourceVersion: watching resumes from it, so what happened while no
   * watcher ran (even an object created and deleted meanwhile) is replayed; a 410 (history
   * compacted) falls back to a relist. Absent: start with a list.
   */
  resumeFrom?: string;
  /** Everything up to this resourceVersion has been handed to onChange. */
  onProgress: (resourceVersion: string) => void;
  /** The trigger is in sync: after a list, or once a resumed watch is open. */
  onSynced: () => void;
  onRelist: (reason: 'start' | 'gone') => void;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * One trigger's list/watch loop, as client-go's reflector: list (or resume from the
 * checkpoint's resourceVersion), hand over what differs from what is known, watch from the
 * list's resourceVersion, re-watch from the last one seen when a watch ends, relist and diff on
 * 410 Gone, back off (1 s to 30 s, jittered) on other errors.
 */
export async function syncTrigger(options: TriggerSyncOptions): Promise<void> {
  const { trigger, logger, signal } = options;
  const path = resourcePath(trigger);
  const selectors = { labelSelector: trigger.labelSelector, fieldSelector: trigger.fieldSelector };
  let resourceVersion = options.resumeFrom;
  let relistReason: 'start' | 'gone' = 'start';
  let failures = 0;
  while (!signal.aborted) {
    try {
      if (resourceVersion === undefined) {
        options.onRelist(relistReason);
        resourceVersion = await relist(options, path, selectors);
        failures = 0;
        options.onSynced();
        options.onProgress(resourceVersion);
      }
      const timeoutSeconds = WATCH_TIMEOUT_SECONDS + Math.floor(Math.random() * WATCH_TIMEOUT_JITTER_SECONDS);
      for await (const event of watchEvents(options.kubeConfig, path, { ...selectors, resourceVersion, timeoutSeconds }, signal, options.onSynced)) {
        failures = 0;
        resourceVersion = resourceVersionOf(event.object) || resourceVersion;
        if (event.type !== 'BOOKMARK') {
          const change = applyWatchEvent(options.known, event.type, event.object);
          if (change) await options.onChange(change);
        }
        options.onProgress(resourceVersion);
      }
      // A normal end (the timeout, a closed connection): watch again from where it stopped.
    } catch (error) {
      if (signal.aborted) return;
      if (isGone(error)) {
        logger.info('watch expired (410 Gone): relisting', { trigger: trigger.index, resourceVersion });
        resourceVersion = undefined;
        relistReason = 'gone';
        continue;
      }
      failures++;
      const delayMs = 1_000 + backoffWithJitter(failures, 1_000, 29_000);
      const denied = error instanceof KubeStatusError && (error.code === 401 || error.code === 403);
      logger.warn(denied ? 'not allowed to list/watch the resource: check the watcher\'s ServiceAccount and Role' : 'list/watch failed; retrying', {
        trigger: trigger.index,
        resource: trigger.resource,
        apiVersion: trigger.apiVersion,
        resourceNamespace: trigger.namespace,
        error: describeError(error),
        retryInMs: delayMs,
      });
      await sleep(delayMs, undefined, { signal }).catch(() => undefined);
    }
  }
}

/** Lists every page and hands over what differs from `known`; returns the list's resourceVersion. */
async function relist(options: TriggerSyncOptions, path: string, selectors: { labelSelector?: string; fieldSelector?: string }): Promise<string> {
  const items: KubeObject[] = [];
  let continueToken: string | undefined;
  let resourceVersion = '';
  do {
    const page = await listPage(options.kubeConfig, path, { ...selectors, limit: LIST_PAGE_SIZE, continue: continueToken }, options.trigger, options.signal);
    items.push(...page.items);
    continueToken = page.metadata?.continue || undefined;
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
  } while (continueToken);
  for (const change of diffRelist(options.known, items)) {
    if (change.type === 'DELETED') options.known.delete(uidOf(change.object));
    else options.known.set(uidOf(change.object), change.object);
    await options.onChange(change);
  }
  return resourceVersion;
}

/**
 * A watch event as a change relative to what is known. The type follows what the watcher knew:
 * an ADDED for a known object is a MODIFIED of it (with its old state), a MODIFIED of an
 * unknown one an ADDED, so oldObject is always the state the lambda was last told about.
 */
export function applyWatchEvent(known: Map<string, KubeObject>, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): ResourceChange | undefined {
  const uid = uidOf(object);
  const before = known.get(uid) ?? null;
  // The same version again, or an older one (a watch resumed from the checkpoint replays what
  // was handled after it): nothing new for this object.
  if (type !== 'DELETED' && before && !isNewer(resourceVersionOf(object), resourceVersionOf(before))) return undefined;
  if (type === 'DELETED') {
    known.delete(uid);
    return { type, object, oldObject: before };
  }
  known.set(uid, object);
  return before ? { type: 'MODIFIED', object, oldObject: before } : { type: 'ADDED', object, oldObject: null };
}

/**
 * Whether a resourceVersion is later than another. They are opaque by contract, but the API
 * server's are etcd revisions (decimal integers); anything else counts as newer when different.
 */
export function isNewer(candidate: string, than: string): boolean {
  if (/^\d+$/.test(candidate) && /^\d+$/.test(than)) return BigInt(candidate) > BigInt(than);
  return candidate !== than;
}
