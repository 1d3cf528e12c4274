import * as k8s from '@kubernetes/client-node';
import type { Logger } from '@kublambda/logging';
import { describeError } from './errors.ts';
import { backoffDelay } from './work-queue.ts';

export interface WatchResourceOptions<T extends k8s.KubernetesObject> {
  kubeConfig: k8s.KubeConfig;
  /** API path to watch, for example /apis/kublambda.io/v1alpha1/lambdas. */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  /** Called for every object seen, changed, deleted or relisted. Must not block: enqueue and return. */
  onObject: (object: T) => void;
  /** Called with the keys of objects that disappeared between two relists. */
  onGone?: (key: string) => void;
  logger: Logger;
  /** A full relist every so often catches anything a watch could have missed. Default 10 minutes. */
  relistIntervalMs?: number;
  labelSelector?: string;
}

export interface ResourceWatch<T extends k8s.KubernetesObject> {
  /** Resolves after the first successful list. */
  synced: Promise<void>;
  cache: k8s.ObjectCache<T>;
  stop(): Promise<void>;
}

export function objectKey(object: k8s.KubernetesObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}

/**
 * An informer used as a trigger: every change calls onObject. client-node's informer stops on
 * any error other than 410 Gone; this restarts it with exponential backoff (1 s to 30 s).
 */
export function watchResource<T extends k8s.KubernetesObject>(options: WatchResourceOptions<T>): ResourceWatch<T> {
  const { logger } = options;
  let markSynced!: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  let failures = 0;
  let stopped = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const known = new Set<string>();

  const list = async () => {
    const result = await options.list();
    failures = 0;
    markSynced();
    return result;
  };
  const informer = k8s.makeInformer(options.kubeConfig, options.path, list, options.labelSelector);
  const seen = (object: T) => {
    failures = 0;
    known.add(objectKey(object));
    options.onObject(object);
  };
  informer.on(k8s.ADD, seen);
  informer.on(k8s.UPDATE, seen);
  informer.on(k8s.DELETE, (object) => {
    known.delete(objectKey(object));
    options.onObject(object);
  });
  informer.on(k8s.ERROR, (error: unknown) => {
    if (stopped) return;
    failures++;
    const delay = backoffDelay(failures, 1_000, 30_000);
    logger.warn('watch failed; restarting', { path: options.path, error: describeError(error), retryInMs: delay });
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => void informer.start(), delay);
  });

  const relist = async () => {
    try {
      const { items } = await options.list();
      const current = new Set(items.map(objectKey));
      for (const key of known) if (!current.has(key)) options.onGone?.(key);
      known.clear();
      for (const item of items) seen(item);
    } catch (error) {
      logger.warn('relist failed', { path: options.path, error: describeError(error) });
    }
  };
  const relistTimer = setInterval(() => void relist(), options.relistIntervalMs ?? 10 * 60_000);

  void informer.start();
  return {
    synced,
    cache: informer,
    stop: async () => {
      stopped = true;
      clearTimeout(restartTimer);
      clearInterval(relistTimer);
      await informer.stop();
    },
  };
}
