import type * as k8s from '@kubernetes/client-node';
import type { Lambda } from '@kublambda/crd-types';
import { watcherAclSetUserArgs } from '@kublambda/redis-acl';
import type { EnvKeyRing } from '@kublambda/route-table';
import { watcherRedisUser, type LambdaName } from '@kublambda/watch-triggers';
import type { ConditionUpdate } from './conditions.ts';
import {
  desiredWatcherObjects,
  isWatcherObjectOf,
  resolveWatchTriggers,
  watcherRedisPassword,
  watcherRedisUrl,
  watchersCondition,
  type WatcherPlatformConfig,
} from './desired-watcher.ts';
import type { HttpExposureConfig } from './http-exposure.ts';
import { ensureApplied, type OwnedObjects } from './kube-owned-objects.ts';
import type { WatcherObjectKinds } from './kube-watcher-objects.ts';
import type { ResourceDiscovery } from './resource-discovery.ts';

/** What the watcher's Redis side needs: its user, and its keys once it is gone. */
export interface WatcherRedis {
  /** ACL SETUSER with these arguments (they start with `reset`: running it again is harmless). */
  setUser(args: string[]): Promise<void>;
  /** ACL DELUSER; an absent user is fine. */
  deleteUser(user: string): Promise<void>;
  /** Removes every key of the lambda's watcher: lease, checkpoints, the trigger id set, dead letters. */
  deleteKeys(lambda: LambdaName): Promise<void>;
}

export interface WatcherDeps {
  config: WatcherPlatformConfig;
  http: HttpExposureConfig;
  /** The controller's own REDIS_URL: watchers reach the same host and port unless config.redisUrl says otherwise. */
  controllerRedisUrl: string;
  /** The first key derives the watchers' Redis passwords. */
  envKeys: EnvKeyRing;
  discovery: ResourceDiscovery;
  objects: WatcherObjectKinds;
  redis: WatcherRedis;
}

export interface WatchersOutcome {
  /** WatchersReady; undefined for a lambda without watch triggers, whose status then loses it. */
  condition?: ConditionUpdate;
  /** A kind the API server does not serve (yet): look again with backoff, as a CRD may come. */
  waitForKind?: boolean;
}

/**
 * The lambda's event-watcher: its triggers checked, then its ServiceAccount, Secret and Redis
 * user, Role(s) and RoleBinding(s), and Deployment applied when missing or drifted. A lambda
 * whose triggers are refused, or that has none (any more), has no watcher objects and no user.
 */
export async function reconcileWatchers(lambda: Lambda, hadWatchers: boolean, deps: WatcherDeps): Promise<WatchersOutcome> {
  const ref = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  const triggers = lambda.spec.triggers?.watch ?? [];
  if (triggers.length === 0) {
    // Asked of the caches and the status only: a lambda that never had watchers costs no call.
    if (hadWatchers || watcherObjectsOf(ref, deps.objects).length > 0) await forgetWatcher(ref, deps);
    return {};
  }
  const discovered = await Promise.all(triggers.map((trigger) => deps.discovery.find(trigger.apiVersion, trigger.kind)));
  const resolution = resolveWatchTriggers(lambda, discovered, deps.config);
  if (!resolution.ok) {
    // The checkpoints stay: once the triggers are fixed, the watcher resumes where it was.
    await removeWatcher(ref, deps);
    return { condition: { type: 'WatchersReady', status: 'False', reason: resolution.reason, message: resolution.message }, waitForKind: resolution.reason === 'UnknownKind' };
  }

  const password = watcherRedisPassword(deps.envKeys.current.key, ref);
  const redisUrl = watcherRedisUrl(deps.config.redisUrl ?? deps.controllerRedisUrl, ref, password);
  const desired = desiredWatcherObjects(lambda, resolution.triggers, { config: deps.config, http: deps.http, redisUrl });
  const { objects } = deps;
  await ensureApplied(objects.serviceAccounts, desired.serviceAccount);
  // The user before the Secret that names it, and on every pass: Redis keeps users made at run
  // time only in memory, so a restarted Redis has lost them; making it again is harmless (it
  // does not disconnect the watcher).
  await deps.redis.setUser(watcherAclSetUserArgs(ref, password));
  await ensureApplied(objects.secrets, desired.secret);
  for (const role of desired.roles) await ensureApplied(objects.roles, role);
  for (const binding of desired.roleBindings) await ensureApplied(objects.roleBindings, binding);
  // A namespace no trigger watches any more loses its Role and RoleBinding.
  await deleteAllBut(objects.roleBindings, ref, desired.roleBindings);
  await deleteAllBut(objects.roles, ref, desired.roles);
  const deployment = await ensureApplied(objects.deployments, desired.deployment);
  return { condition: watchersCondition(deployment) };
}

/** Removes the watcher's objects (wherever they are) and its Redis user; its keys stay. */
export async function removeWatcher(lambda: LambdaName, deps: Pick<WatcherDeps, 'objects' | 'redis'>): Promise<void> {
  const { objects } = deps;
  // The Deployment first, so no watcher runs without its rights; the user last, which also
  // disconnects a watcher still running.
  for (const kind of [objects.deployments, objects.roleBindings, objects.roles, objects.secrets, objects.serviceAccounts] as Array<OwnedObjects<k8s.KubernetesObject>>) {
    await deleteAllBut(kind, lambda, []);
  }
  await deps.redis.deleteUser(watcherRedisUser(lambda));
}

/** Everything of the watcher goes, checkpoints and dead letters too: for lambdas deleted or without watch triggers. */
export async function forgetWatcher(lambda: LambdaName, deps: Pick<WatcherDeps, 'objects' | 'redis'>): Promise<void> {
  await removeWatcher(lambda, deps);
  await deps.redis.deleteKeys(lambda);
}

function watcherObjectsOf(lambda: LambdaName, objects: WatcherObjectKinds): k8s.KubernetesObject[] {
  return Object.values(objects).flatMap((kind: OwnedObjects<k8s.KubernetesObject>) => kind.listCached().filter((o) => isWatcherObjectOf(o, lambda)));
}

/**
 * Deletes the lambda's cached objects of one kind that are not among `keep`. The informer's
 * cache is the guide: an object it has not seen yet brings an event, and with it another pass.
 */
async function deleteAllBut<T extends k8s.KubernetesObject>(objects: OwnedObjects<T>, lambda: LambdaName, keep: readonly T[]): Promise<void> {
  const kept = new Set(keep.map((o) => `${o.metadata!.namespace}/${o.metadata!.name}`));
  for (const object of objects.listCached()) {
    const { namespace, name } = object.metadata!;
    if (isWatcherObjectOf(object, lambda) && !kept.has(`${namespace}/${name}`)) await objects.delete(namespace!, name!);
  }
}
