// Watch triggers, the controller's half: api-controller runs as a local process against the
// real API server (with kube-controller-manager, so Deployments get ReplicaSets and owner
// references are garbage-collected for real, kube-scheduler and kwok, which makes the watcher's
// pod Ready though nothing runs in it) and a real Redis. The watcher process itself is not run
// here (apps/event-watcher's tests do); what its ServiceAccount may do is asked of the API
// server with a token of its own (TokenRequest).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { createTestNamespace, kubectl, waitUntil } from '@kublambda/dev-servers';
import type { Lambda } from '@kublambda/crd-types';
import { ROUTES_KEY } from '@kublambda/route-table';
import { STATE_KEY_PREFIX } from '@kublambda/state-tables';
import { watcherKeys, watcherRedisUser } from '@kublambda/watch-triggers';
import { DEFAULT_WATCHABLE_RESOURCES, WATCHER_CONFIG_DIGEST_ANNOTATION } from './desired-watcher.ts';
import { condition, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

// A kind of our own, from a CRD the tests install, that the controller is configured to allow.
const widgetGroup = `w${randomBytes(4).toString('hex')}.kublambda-test.io`;
const widgetCrd = `widgets.${widgetGroup}`;
let platform: LambdaPlatform;
let granted: { name: string; delete(): Promise<void> };
let elsewhere: { name: string; delete(): Promise<void> };
let admin: Redis;

beforeAll(async () => {
  platform = await startLambdaPlatform('watch');
  granted = await createTestNamespace(platform.kubeConfig, 'watch-granted');
  elsewhere = await createTestNamespace(platform.kubeConfig, 'watch-elsewhere');
  admin = new Redis(platform.redis.adminUrl);
  // No builder: watchers do not wait for a build, and the machine has little CPU to spare.
  await platform.startController(undefined, {
    WATCHABLE_RESOURCES: [...DEFAULT_WATCHABLE_RESOURCES, `${widgetGroup}/widgets`].join(','),
    WATCH_NAMESPACE_GRANTS: JSON.stringify({ [platform.namespace]: [granted.name] }),
    EVENT_WATCHER_IMAGE: 'registry.example/event-watcher:test',
  });
}, 90_000);
afterAll(async () => {
  admin?.disconnect();
  await platform?.stop();
  await granted?.delete();
  await elsewhere?.delete();
  await kubectl(['delete', 'crd', widgetCrd, '--ignore-not-found', '--wait=false']);
});

const WATCHER_KINDS = ['serviceaccount', 'role', 'rolebinding', 'secret', 'deployment'] as const;
type WatcherKind = (typeof WATCHER_KINDS)[number];

/** An object as the API server holds it, read without client-node's typed models. */
async function read(kind: WatcherKind, name: string, namespace = platform.namespace): Promise<Record<string, any> | undefined> {
  const result = await kubectl(['get', kind, name, '-n', namespace, '-o', 'json', '--ignore-not-found']);
  if (result.exitCode !== 0) throw new Error(`kubectl get ${kind} ${name}: ${result.stderr}`);
  return result.stdout.trim() ? JSON.parse(result.stdout) : undefined;
}

const watcherName = (lambda: string) => `kublambda-watch-${lambda}`;
const ref = (name: string) => ({ namespace: platform.namespace, name });
const hello = { inline: 'export default () => new Response("ok")' };
const configMapTrigger = { apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=demo' };

function watchersAre(status: string, reason: string) {
  return (lambda: Lambda | undefined) =>
    lambda?.status?.observedGeneration === lambda?.metadata.generation && condition(lambda, 'WatchersReady')?.status === status && condition(lambda, 'WatchersReady')?.reason === reason;
}

/** Applies a lambda with these watch triggers and waits until its watcher Deployment is available. */
async function watchingLambda(name: string, watch: unknown[]): Promise<Lambda> {
  await platform.apply(name, { source: hello, triggers: { watch } });
  return (await platform.waitFor(name, 'with its watcher available', watchersAre('True', 'Available'), 90_000))!;
}

async function objectsOf(lambda: string): Promise<Record<WatcherKind, Record<string, any> | undefined>> {
  const found = await Promise.all(WATCHER_KINDS.map((kind) => read(kind, watcherName(lambda))));
  return Object.fromEntries(WATCHER_KINDS.map((kind, i) => [kind, found[i]])) as Record<WatcherKind, Record<string, any> | undefined>;
}

async function redisUserExists(lambda: string): Promise<boolean> {
  return (await admin.call('ACL', 'GETUSER', watcherRedisUser(ref(lambda)))) !== null;
}

/** A KubeConfig that is the watcher's ServiceAccount, with a token from the TokenRequest API. */
async function asServiceAccount(name: string): Promise<k8s.KubeConfig> {
  const core = platform.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({ name, namespace: platform.namespace, body: { spec: { audiences: [], expirationSeconds: 600 } } });
  const cluster = platform.kubeConfig.getCurrentCluster()!;
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'watcher', token: request.status!.token }],
    contexts: [{ name: 'watcher', cluster: cluster.name, user: 'watcher' }],
    currentContext: 'watcher',
  });
  return kubeConfig;
}

describe('a Lambda with watch triggers', () => {
  it('gets a ServiceAccount, Role, RoleBinding, Secret and Deployment, owned by it, and its own Redis user', async () => {
    const lambda = await watchingLambda('cm-watch', [configMapTrigger]);
    const objects = await objectsOf('cm-watch');
    const owner = [{ apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', name: 'cm-watch', uid: lambda.metadata.uid, controller: true, blockOwnerDeletion: true }];
    for (const kind of WATCHER_KINDS) {
      expect(objects[kind]?.metadata.ownerReferences).toEqual(owner);
      expect(objects[kind]!.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'kublambda-api-controller', 'kublambda.io/lambda': 'cm-watch', 'app.kubernetes.io/component': 'event-watcher' });
    }
    expect(objects.role!.rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }]);
    expect(objects.rolebinding!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: watcherName('cm-watch') });
    expect(objects.rolebinding!.subjects).toEqual([{ kind: 'ServiceAccount', name: watcherName('cm-watch'), namespace: platform.namespace }]);
    const deployment = objects.deployment!;
    expect(deployment.spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    expect(deployment.spec.template.spec.serviceAccountName).toBe(watcherName('cm-watch'));
    expect(deployment.spec.template.spec.containers[0].image).toBe('registry.example/event-watcher:test');
    const watcherConfig = JSON.parse(deployment.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'WATCHER_CONFIG').value);
    expect(watcherConfig).toMatchObject({
      lambda: ref('cm-watch'),
      target: { host: '', path: `/${platform.namespace}/cm-watch` },
      triggers: [{ index: 0, apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: platform.namespace, labelSelector: 'app=demo', events: ['ADDED', 'MODIFIED', 'DELETED'] }],
    });
    expect(condition(lambda, 'WatchersReady')!.message).toContain(`Deployment ${watcherName('cm-watch')} is available`);

    expect(await redisUserExists('cm-watch')).toBe(true);
    const watcherUrl = Buffer.from(objects.secret!.data.REDIS_URL, 'base64').toString();
    expect(decodeURIComponent(new URL(watcherUrl).username)).toBe(watcherRedisUser(ref('cm-watch')));
    const watcher = new Redis(watcherUrl, { maxRetriesPerRequest: 1 });
    try {
      const own = watcherKeys(ref('cm-watch'));
      await watcher.set(own.lease, 'me');
      expect(await watcher.get(own.lease)).toBe('me');
      await watcher.sadd(own.triggerIds, 'abc');
      await expect(watcher.get(watcherKeys(ref('other')).lease)).rejects.toThrow(/NOPERM/);
      await expect(watcher.get(`${STATE_KEY_PREFIX}{${platform.namespace}}:visits`)).rejects.toThrow(/NOPERM/);
      await expect(watcher.hgetall(ROUTES_KEY)).rejects.toThrow(/NOPERM/);
    } finally {
      watcher.disconnect();
    }
  }, 120_000);

  it("gives the watcher's ServiceAccount exactly read access to what it watches, as the API server decides", async () => {
    await watchingLambda('rbac-watch', [configMapTrigger]);
    const asWatcher = await asServiceAccount(watcherName('rbac-watch'));
    const core = asWatcher.makeApiClient(k8s.CoreV1Api);
    const namespace = platform.namespace;
    await expect(core.listNamespacedConfigMap({ namespace })).resolves.toMatchObject({ items: expect.any(Array) });

    const seen: string[] = [];
    const watching = await new k8s.Watch(asWatcher).watch(`/api/v1/namespaces/${namespace}/configmaps`, { labelSelector: 'app=demo' }, (type, object) => seen.push(`${type} ${object.metadata.name}`), () => {});
    try {
      const adminCore = platform.kubeConfig.makeApiClient(k8s.CoreV1Api);
      await adminCore.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'seen-by-watcher', labels: { app: 'demo' } }, data: { a: '1' } } });
      await waitUntil('the watcher to see the ConfigMap', () => seen.includes('ADDED seen-by-watcher'), { describe: () => JSON.stringify(seen) });
    } finally {
      watching.abort();
    }

    await expect(core.listNamespacedSecret({ namespace })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedConfigMap({ namespace: elsewhere.name })).rejects.toMatchObject({ code: 403 });
    await expect(asWatcher.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace })).rejects.toMatchObject({ code: 403 });
  }, 120_000);

  it('repairs its watcher objects: a deleted Role comes back, a widened one is narrowed again', async () => {
    await watchingLambda('watch-drift', [configMapTrigger]);
    const name = watcherName('watch-drift');
    const rules = async () => (await read('role', name))?.rules;
    const onlyConfigMaps = [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }];
    expect((await kubectl(['delete', 'role', name, '-n', platform.namespace])).exitCode).toBe(0);
    await waitUntil('the Role to come back', async () => JSON.stringify(await rules()) === JSON.stringify(onlyConfigMaps), { describe: async () => JSON.stringify(await rules()) });

    const widened = [...onlyConfigMaps, { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }];
    expect((await kubectl(['patch', 'role', name, '-n', platform.namespace, '--type=merge', '-p', JSON.stringify({ rules: widened })])).exitCode).toBe(0);
    await waitUntil('the Role to be narrowed again', async () => JSON.stringify(await rules()) === JSON.stringify(onlyConfigMaps), { describe: async () => JSON.stringify(await rules()) });

    expect((await kubectl(['delete', 'secret', name, '-n', platform.namespace])).exitCode).toBe(0);
    await waitUntil('the Secret to come back', async () => (await read('secret', name)) !== undefined);
  }, 120_000);

  it("makes the watcher's Redis user again when Redis has lost it, as a restarted Redis has", async () => {
    await watchingLambda('watch-redis-restart', [configMapTrigger]);
    expect(await admin.call('ACL', 'DELUSER', watcherRedisUser(ref('watch-redis-restart')))).toBe(1);
    // The controller relists its lambdas every second here; the next pass makes it again.
    await waitUntil('the Redis user to be made again', () => redisUserExists('watch-redis-restart'));
  }, 120_000);

  it('refuses another namespace without a grant, Secrets and cluster-scoped kinds, and makes no watcher for them', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['watch-other-ns', { ...configMapTrigger, namespace: elsewhere.name }, new RegExp(`may not watch namespace ${elsewhere.name}`)],
      ['watch-secrets', { apiVersion: 'v1', kind: 'Secret' }, /v1 Secret \(secrets\) may not be watched; the platform allows configmaps, services, pods/],
      ['watch-namespaces', { apiVersion: 'v1', kind: 'Namespace' }, /cluster-scoped kinds cannot be watched/],
    ];
    await platform.applyAll(cases.map(([name, trigger]) => [name, { source: hello, triggers: { watch: [trigger] } }]));
    for (const [name, , message] of cases) {
      const lambda = await platform.waitFor(name, 'refused its watcher', watchersAre('False', 'Forbidden'), 90_000);
      expect(condition(lambda, 'WatchersReady')!.message).toMatch(message);
      expect(condition(lambda, 'Ready')).toMatchObject({ status: 'False' });
      const objects = await objectsOf(name);
      expect([objects.deployment, objects.role, objects.rolebinding]).toEqual([undefined, undefined, undefined]);
      expect(await redisUserExists(name)).toBe(false);
    }
  }, 120_000);

  it('waits for an unknown kind, which a CRD installed later makes watchable; an apps/v1 Deployment trigger works', async () => {
    await platform.apply('watch-widgets', { source: hello, triggers: { watch: [{ apiVersion: `${widgetGroup}/v1`, kind: 'Widget' }] } });
    const unknown = await platform.waitFor('watch-widgets', 'waiting for its kind', watchersAre('False', 'UnknownKind'), 90_000);
    expect(condition(unknown, 'WatchersReady')!.message).toContain(`no kind Widget in apiVersion ${widgetGroup}/v1`);
    expect(await read('deployment', watcherName('watch-widgets'))).toBeUndefined();

    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: widgetCrd },
      spec: {
        group: widgetGroup,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    const applied = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
    expect(applied.stderr).toBe('');
    // The lambda is retried with backoff (at most 30 s apart), and discovery looks again on a miss.
    await platform.waitFor('watch-widgets', 'watching widgets', watchersAre('True', 'Available'), 120_000);
    expect((await read('role', watcherName('watch-widgets')))!.rules).toEqual([{ apiGroups: [widgetGroup], resources: ['widgets'], verbs: ['get', 'list', 'watch'] }]);

    await watchingLambda('watch-deployments', [{ apiVersion: 'apps/v1', kind: 'Deployment' }, { apiVersion: 'apps/v1', kind: 'StatefulSet' }, configMapTrigger]);
    expect((await read('role', watcherName('watch-deployments')))!.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch'] },
    ]);
  }, 240_000);

  it('refuses a condition that does not compile, with its position, and recovers once it is fixed', async () => {
    await platform.apply('watch-condition', { source: hello, triggers: { watch: [{ ...configMapTrigger, condition: 'object.data.enabled == ' }] } });
    const refused = await platform.waitFor('watch-condition', 'refused its condition', watchersAre('False', 'InvalidCondition'), 90_000);
    expect(condition(refused, 'WatchersReady')!.message).toMatch(/^spec\.triggers\.watch\[0\]\.condition: 1:\d+: \S/);
    expect(await read('deployment', watcherName('watch-condition'))).toBeUndefined();

    await watchingLambda('watch-condition', [{ ...configMapTrigger, condition: 'object.data.enabled == "true"' }]);
    expect(await read('deployment', watcherName('watch-condition'))).toBeDefined();
  }, 120_000);

  it('rolls the Deployment when a trigger changes, and removes the watcher when the triggers go', async () => {
    await watchingLambda('watch-changes', [configMapTrigger]);
    const digest = async () => (await read('deployment', watcherName('watch-changes')))?.spec.template.metadata.annotations[WATCHER_CONFIG_DIGEST_ANNOTATION];
    const before = await digest();
    expect(before).toMatch(/^[0-9a-f]{16}$/);
    await watchingLambda('watch-changes', [{ ...configMapTrigger, labelSelector: 'app=other' }]);
    await waitUntil('the pod template to change', async () => (await digest()) !== before);

    await platform.apply('watch-changes', { source: hello });
    const without = await platform.waitFor('watch-changes', 'without WatchersReady', (l) => l?.status?.observedGeneration === l?.metadata.generation && !condition(l, 'WatchersReady'), 90_000);
    expect(condition(without, 'Ready')!.reason).not.toMatch(/Watchers|RollingOut/);
    await waitUntil('the watcher objects to go', async () => Object.values(await objectsOf('watch-changes')).every((o) => o === undefined), {
      describe: async () => JSON.stringify(Object.entries(await objectsOf('watch-changes')).filter(([, o]) => o).map(([kind]) => kind)),
    });
    expect(await redisUserExists('watch-changes')).toBe(false);
  }, 180_000);

  it('gives a granted namespace a Role and RoleBinding of its own, removed with the trigger and with the lambda', async () => {
    const rbacIn = async (namespace: string) =>
      Promise.all((['role', 'rolebinding'] as const).map((kind) => read(kind, `kublambda-watch-${platform.namespace}.watch-granted`, namespace)));
    await watchingLambda('watch-granted', [configMapTrigger, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: granted.name }]);
    const [role, binding] = await rbacIn(granted.name);
    expect(role!.metadata.ownerReferences).toBeUndefined();
    expect(role!.metadata.labels).toMatchObject({ 'kublambda.io/lambda': 'watch-granted', 'kublambda.io/lambda-namespace': platform.namespace });
    expect(role!.rules).toEqual([{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] }]);
    expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: watcherName('watch-granted'), namespace: platform.namespace }]);
    const asWatcher = await asServiceAccount(watcherName('watch-granted'));
    await expect(asWatcher.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace: granted.name })).resolves.toMatchObject({ items: expect.any(Array) });

    await watchingLambda('watch-granted', [configMapTrigger]);
    await waitUntil('the granted namespace to lose the Role', async () => (await rbacIn(granted.name)).every((o) => o === undefined));

    await watchingLambda('watch-granted', [configMapTrigger, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: granted.name }]);
    await waitUntil('the Role to come back', async () => (await rbacIn(granted.name)).every((o) => o !== undefined));
    await platform.remove('watch-granted');
    await platform.waitFor('watch-granted', 'gone', (l) => l === undefined);
    expect(await rbacIn(granted.name)).toEqual([undefined, undefined]);
  }, 180_000);

  it("removes the watcher's Redis user and keys when the Lambda is deleted", async () => {
    await watchingLambda('watch-deleted', [configMapTrigger]);
    expect(await redisUserExists('watch-deleted')).toBe(true);
    // What a watcher would have left: a lease, checkpoints of two triggers, dead letters.
    const keys = watcherKeys(ref('watch-deleted'));
    await admin.set(keys.lease, 'pod-1');
    await admin.sadd(keys.triggerIds, 't1', 't2');
    for (const id of ['t1', 't2']) {
      await admin.hset(keys.objects(id), 'uid', '{}');
      await admin.set(keys.resourceVersion(id), '42');
    }
    await admin.lpush(keys.deadLetters, '{}');
    const untouched = watcherKeys(ref('cm-other'));
    await admin.set(untouched.lease, 'pod-2');

    await platform.remove('watch-deleted');
    await platform.waitFor('watch-deleted', 'gone', (l) => l === undefined);
    expect(await redisUserExists('watch-deleted')).toBe(false);
    expect(await admin.keys(keys.pattern)).toEqual([]);
    expect(await admin.get(untouched.lease)).toBe('pod-2');
  }, 120_000);
});
