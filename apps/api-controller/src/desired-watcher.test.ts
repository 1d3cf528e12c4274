import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import type { Lambda, WatchTrigger } from '@kublambda/crd-types';
import { watcherAclSetUserArgs } from '@kublambda/redis-acl';
import { parseWatcherConfig, watchTriggerId } from '@kublambda/watch-triggers';
import {
  DEFAULT_WATCHABLE_RESOURCES,
  desiredWatcherObjects,
  lambdaKeyOfWatcherObject,
  resolveWatchTriggers,
  watcherRedisPassword,
  watcherRedisUrl,
  watcherRoleRules,
  watchersCondition,
  WATCHER_CONFIG_DIGEST_ANNOTATION,
  type DiscoveredResource,
  type WatcherPlatformConfig,
} from './desired-watcher.ts';

const config: WatcherPlatformConfig = { image: 'watcher:1', watchableResources: DEFAULT_WATCHABLE_RESOURCES, namespaceGrants: { shop: ['billing'] } };
const http = { platformNamespace: 'kl', clusterDomain: 'cluster.local', ingressClassName: '', ingressAnnotations: {} };
const configMaps: DiscoveredResource = { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true };
const deployments: DiscoveredResource = { group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true };
const secrets: DiscoveredResource = { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true };
const namespaces: DiscoveredResource = { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false };

function lambda(watch: WatchTrigger[], name = 'orders', http?: { path?: string; host?: string }): Lambda {
  return {
    apiVersion: 'kublambda.io/v1alpha1',
    kind: 'Lambda',
    metadata: { name, namespace: 'shop', uid: 'uid-1', generation: 1 },
    spec: { source: { inline: 'x' }, triggers: { watch, ...(http ? { http } : {}) } },
  } as Lambda;
}

const cm: WatchTrigger = { apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=demo' };

describe('resolveWatchTriggers', () => {
  it('resolves triggers with ids, positions, the lambda namespace and all three events by default', () => {
    const dep: WatchTrigger = { apiVersion: 'apps/v1', kind: 'Deployment', events: ['ADDED'], condition: 'type == "ADDED"' };
    const resolved = resolveWatchTriggers(lambda([cm, dep]), [configMaps, deployments], config);
    expect(resolved).toEqual({
      ok: true,
      triggers: [
        { id: watchTriggerId({ apiVersion: 'v1', resource: 'configmaps', namespace: 'shop', labelSelector: 'app=demo' }), index: 0, apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', labelSelector: 'app=demo', events: ['ADDED', 'MODIFIED', 'DELETED'] },
        { id: watchTriggerId({ apiVersion: 'apps/v1', resource: 'deployments', namespace: 'shop' }), index: 1, apiVersion: 'apps/v1', kind: 'Deployment', resource: 'deployments', namespace: 'shop', events: ['ADDED'], condition: 'type == "ADDED"' },
      ],
    });
  });

  it.each<[string, WatchTrigger, DiscoveredResource | undefined, string, RegExp]>([
    ['an unknown kind', { apiVersion: 'example.com/v1', kind: 'Widget' }, undefined, 'UnknownKind', /watch\[0\]: the API server knows no kind Widget in apiVersion example\.com\/v1/],
    ['Secrets', { apiVersion: 'v1', kind: 'Secret' }, secrets, 'Forbidden', /v1 Secret \(secrets\) may not be watched; the platform allows configmaps, services, .*kublambda\.io\/lambdas/],
    ['a cluster-scoped kind', { apiVersion: 'v1', kind: 'Namespace' }, namespaces, 'Forbidden', /cluster-scoped kinds cannot be watched/],
    ['another namespace without a grant', { ...cm, namespace: 'payroll' }, configMaps, 'Forbidden', /namespace shop may not watch namespace payroll \(granted: billing; WATCH_NAMESPACE_GRANTS\)/],
    ['a condition that does not compile', { ...cm, condition: 'object.data.x ==' }, configMaps, 'InvalidCondition', /^spec\.triggers\.watch\[0\]\.condition: \d+:\d+: /],
    ['a condition with an unknown name', { ...cm, condition: 'obj.x == 1' }, configMaps, 'InvalidCondition', /^spec\.triggers\.watch\[0\]\.condition: 1:1: undeclared reference to 'obj'/],
  ])('refuses %s', (_what, trigger, found, reason, message) => {
    const resolved = resolveWatchTriggers(lambda([trigger]), [found], config);
    expect(resolved).toMatchObject({ ok: false, reason });
    expect(resolved.ok || resolved.message).toMatch(message);
  });

  it('lets a granted namespace be watched', () => {
    const resolved = resolveWatchTriggers(lambda([{ ...cm, namespace: 'billing' }]), [configMaps], config);
    expect(resolved).toMatchObject({ ok: true, triggers: [{ namespace: 'billing' }] });
  });

  it('refuses the whole watcher when one trigger is refused, naming every refusal', () => {
    const resolved = resolveWatchTriggers(lambda([cm, { apiVersion: 'v1', kind: 'Secret' }, { apiVersion: 'x.io/v1', kind: 'Y' }]), [configMaps, secrets, undefined], config);
    expect(resolved).toMatchObject({ ok: false, reason: 'Forbidden' });
    expect(resolved.ok || resolved.message).toMatch(/watch\[1\].*; spec\.triggers\.watch\[2\]/);
  });
});

describe('watcherRoleRules', () => {
  it('grants get, list and watch, one rule per group, resources sorted and deduplicated', () => {
    const rules = watcherRoleRules([
      { apiVersion: 'v1', resource: 'services' },
      { apiVersion: 'apps/v1', resource: 'statefulsets' },
      { apiVersion: 'v1', resource: 'configmaps' },
      { apiVersion: 'apps/v1', resource: 'deployments' },
      { apiVersion: 'v1', resource: 'configmaps' },
    ]);
    expect(rules).toEqual([
      { apiGroups: [''], resources: ['configmaps', 'services'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch'] },
    ]);
  });
});

describe('the watcher Redis user', () => {
  const key = Buffer.alloc(32, 7);
  it('has a password derived from the key and the lambda, usable in ACL SETUSER', () => {
    const password = watcherRedisPassword(key, { namespace: 'shop', name: 'orders' });
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(watcherRedisPassword(key, { namespace: 'shop', name: 'orders' })).toBe(password);
    expect(watcherRedisPassword(key, { namespace: 'shop', name: 'other' })).not.toBe(password);
    expect(watcherRedisPassword(Buffer.alloc(32, 8), { namespace: 'shop', name: 'orders' })).not.toBe(password);
    expect(() => watcherAclSetUserArgs({ namespace: 'shop', name: 'orders' }, password)).not.toThrow();
  });

  it('gets a URL with the host of the base URL and its own credentials', () => {
    const url = new URL(watcherRedisUrl('redis://api-controller:secret@redis.kl:6380/0', { namespace: 'shop', name: 'orders' }, 'pw'));
    expect([url.protocol, url.hostname, url.port, url.pathname, decodeURIComponent(url.username), url.password]).toEqual(['redis:', 'redis.kl', '6380', '/0', 'watcher.shop.orders', 'pw']);
  });
});

describe('desiredWatcherObjects', () => {
  const triggersOf = (l: Lambda) => {
    const resolved = resolveWatchTriggers(l, l.spec.triggers!.watch!.map((t) => (t.kind === 'Deployment' ? deployments : configMaps)), config);
    if (!resolved.ok) throw new Error(resolved.message);
    return resolved.triggers;
  };
  const objectsOf = (l: Lambda, redisUrl = 'redis://watcher:pw@redis:6379') => desiredWatcherObjects(l, triggersOf(l), { config, http, redisUrl });

  it('makes a ServiceAccount, Role, RoleBinding, Secret and Deployment owned by the lambda', () => {
    const l = lambda([cm], 'orders', { host: 'shop.example.com', path: '/orders' });
    const objects = objectsOf(l);
    const all: k8s.KubernetesObject[] = [objects.serviceAccount, ...objects.roles, ...objects.roleBindings, objects.secret, objects.deployment];
    for (const object of all) {
      expect(object.metadata).toMatchObject({
        name: 'kublambda-watch-orders',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'kublambda-api-controller', 'kublambda.io/lambda': 'orders', 'app.kubernetes.io/component': 'event-watcher' },
        ownerReferences: [{ apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', name: 'orders', uid: 'uid-1', controller: true, blockOwnerDeletion: true }],
      });
      expect(lambdaKeyOfWatcherObject(object)).toBe('shop/orders');
    }
    expect(objects.roles[0]!.rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }]);
    expect(objects.roleBindings[0]).toMatchObject({
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kublambda-watch-orders' },
      subjects: [{ kind: 'ServiceAccount', name: 'kublambda-watch-orders', namespace: 'shop' }],
    });
    expect(Buffer.from(objects.secret.data!.REDIS_URL!, 'base64').toString()).toBe('redis://watcher:pw@redis:6379');

    const spec = objects.deployment.spec!;
    expect(spec).toMatchObject({ replicas: 1, strategy: { type: 'Recreate' } });
    const pod = spec.template.spec!;
    expect(pod.serviceAccountName).toBe('kublambda-watch-orders');
    const container = pod.containers[0]!;
    expect(container).toMatchObject({
      image: 'watcher:1',
      imagePullPolicy: 'IfNotPresent',
      ports: [{ name: 'http', containerPort: 8080 }],
      livenessProbe: { httpGet: { path: '/healthz' } },
      readinessProbe: { httpGet: { path: '/readyz' } },
      securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
    });
    const env = Object.fromEntries(container.env!.map((e) => [e.name, e]));
    expect(env.RUNNER_URL!.value).toBe('http://kublambda-runner.kl.svc.cluster.local');
    expect(env.REDIS_URL!.valueFrom).toEqual({ secretKeyRef: { name: 'kublambda-watch-orders', key: 'REDIS_URL' } });
    expect(env.POD_NAME!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.PORT!.value).toBe('8080');
    const watcher = parseWatcherConfig(env.WATCHER_CONFIG!.value);
    expect(watcher).toEqual({ lambda: { namespace: 'shop', name: 'orders' }, target: { host: 'shop.example.com', path: '/orders' }, triggers: triggersOf(l) });
  });

  it('targets the default path and no host without an HTTP trigger', () => {
    const env = objectsOf(lambda([cm])).deployment.spec!.template.spec!.containers[0]!.env!;
    expect(JSON.parse(env.find((e) => e.name === 'WATCHER_CONFIG')!.value!).target).toEqual({ host: '', path: '/shop/orders' });
  });

  it('rolls the pods when the triggers or the Redis URL change, not otherwise', () => {
    const digest = (l: Lambda, url?: string) => objectsOf(l, url).deployment.spec!.template.metadata!.annotations![WATCHER_CONFIG_DIGEST_ANNOTATION];
    const base = digest(lambda([cm]));
    expect(digest(lambda([cm]))).toBe(base);
    expect(digest(lambda([{ ...cm, labelSelector: 'app=other' }]))).not.toBe(base);
    expect(digest(lambda([cm]), 'redis://watcher:rotated@redis:6379')).not.toBe(base);
  });

  it('puts a Role and RoleBinding without owner into each other watched namespace', () => {
    const objects = objectsOf(lambda([cm, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'billing' }]));
    expect(objects.roles.map((r) => [r.metadata!.namespace, r.metadata!.name, r.rules])).toEqual([
      ['shop', 'kublambda-watch-orders', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }]],
      ['billing', 'kublambda-watch-shop.orders', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] }]],
    ]);
    const other = objects.roleBindings[1]!;
    expect(other.metadata!.ownerReferences).toBeUndefined();
    expect(other.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kublambda-watch-orders', namespace: 'shop' }]);
    expect(lambdaKeyOfWatcherObject(other)).toBe('shop/orders');
  });

  it('keeps names and label values valid for the longest lambda name', () => {
    const name = 'a'.repeat(53);
    const objects = objectsOf(lambda([cm, { ...cm, namespace: 'billing' }], name));
    for (const object of [objects.serviceAccount, ...objects.roles, ...objects.roleBindings, objects.secret, objects.deployment]) {
      expect(object.metadata!.name!.length).toBeLessThanOrEqual(253);
      expect(object.metadata!.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      for (const value of Object.values(object.metadata!.labels!)) expect(value.length).toBeLessThanOrEqual(63);
    }
    for (const value of Object.values(objects.deployment.spec!.template.metadata!.labels!)) expect(value.length).toBeLessThanOrEqual(63);
  });
});

describe('watchersCondition', () => {
  const deployment = (status: k8s.V1DeploymentStatus, generation = 2): k8s.V1Deployment => ({ metadata: { name: 'kublambda-watch-orders', generation }, status });
  const available = { type: 'Available', status: 'True' };
  it.each<[string, k8s.V1Deployment | undefined, string, string]>([
    ['not there yet', undefined, 'Unknown', 'RollingOut'],
    ['not observed yet', deployment({ observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1, conditions: [available] }), 'Unknown', 'RollingOut'],
    ['no pod available', deployment({ observedGeneration: 2, updatedReplicas: 1, availableReplicas: 0, conditions: [{ type: 'Available', status: 'False' }] }), 'Unknown', 'RollingOut'],
    ['available and current', deployment({ observedGeneration: 2, updatedReplicas: 1, availableReplicas: 1, conditions: [available] }), 'True', 'Available'],
    ['past its progress deadline', deployment({ observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet x has timed out progressing.' }] }), 'False', 'DeploymentFailed'],
    ['failing to make pods', deployment({ observedGeneration: 2, conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "x" is forbidden: quota' }] }), 'False', 'DeploymentFailed'],
  ])('is %s', (_what, observed, status, reason) => {
    expect(watchersCondition(observed)).toMatchObject({ type: 'WatchersReady', status, reason });
  });

  it('carries the Deployment condition message', () => {
    const failed = deployment({ conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "x" is forbidden: quota' }] });
    expect(watchersCondition(failed).message).toBe('Deployment kublambda-watch-orders: pods "x" is forbidden: quota');
  });
});

describe("the chart's ClusterRole", () => {
  it('reads exactly the default watchable resources, so the controller may grant each of them and nothing else', async () => {
    const path = await import('node:path');
    const YAML = (await import('yaml')).default;
    const { execa } = await import('execa');
    const { helmBinary } = await import('@kublambda/dev-servers');
    // The chart's default values, as helm renders them.
    const rendered = await execa(await helmBinary(), ['template', 'x', path.resolve(import.meta.dirname, '../../../charts/kublambda'), '--show-only', 'templates/api-controller-rbac.yaml']);
    const clusterRole = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS()).filter(Boolean).find((d) => d.kind === 'ClusterRole');
    const readable = new Set<string>();
    for (const rule of clusterRole.rules as k8s.V1PolicyRule[]) {
      if (!['get', 'list', 'watch'].every((verb) => rule.verbs.includes(verb))) continue;
      for (const group of rule.apiGroups!) for (const resource of rule.resources!) readable.add(group ? `${group}/${resource}` : resource);
    }
    for (const resource of DEFAULT_WATCHABLE_RESOURCES) expect(readable).toContain(resource);
    // What the controller reads for its own work, beside the watchable resources.
    const own = ['serviceaccounts', 'secrets', 'rbac.authorization.k8s.io/roles', 'rbac.authorization.k8s.io/rolebindings', 'kublambda.io/lambdas'];
    expect([...readable].filter((r) => !DEFAULT_WATCHABLE_RESOURCES.includes(r)).sort()).toEqual(own.filter((r) => !DEFAULT_WATCHABLE_RESOURCES.includes(r)).sort());
  }, 30_000);
});
