import { createHash, hkdfSync } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Lambda, WatchTrigger } from '@kublambda/crd-types';
import { withRedisCredentials } from '@kublambda/redis-connection';
import {
  compileCondition,
  WATCH_EVENT_TYPES,
  WATCHER_CONFIG_ENV,
  watcherRedisUser,
  watchTriggerId,
  type LambdaName,
  type ResolvedWatchTrigger,
  type WatcherConfig,
} from '@kublambda/watch-triggers';
import type { ConditionUpdate } from './conditions.ts';
import { FIELD_MANAGER, lambdaPath, LAMBDA_LABEL, MANAGED_BY_LABEL, ownedMetadata, RUNNER_SERVICE, withDigest, type HttpExposureConfig } from './http-exposure.ts';

// The event-watcher of a lambda with watch triggers, as pure functions of the Lambda, what
// discovery says about the kinds it names, and the platform's configuration: first whether its
// triggers may be watched at all, then the ServiceAccount, Role(s), RoleBinding(s), Secret and
// Deployment that run it.

export interface WatcherPlatformConfig {
  image: string;
  /**
   * "group/resource" (core resources without a group: "configmaps") that triggers may watch.
   * The controller can grant only what it holds, so its ClusterRole reads exactly these.
   */
  watchableResources: readonly string[];
  /** Lambda namespace -> the other namespaces its lambdas may watch (WATCH_NAMESPACE_GRANTS). */
  namespaceGrants: Readonly<Record<string, readonly string[]>>;
  /** Where watcher pods reach Redis, without credentials; unset: the controller's own REDIS_URL host. */
  redisUrl?: string;
}

export const DEFAULT_EVENT_WATCHER_IMAGE = 'ghcr.io/kublambda/event-watcher:0.1.0';
export const DEFAULT_WATCHABLE_RESOURCES = [
  'configmaps', 'services', 'pods', 'endpoints', 'persistentvolumeclaims', 'serviceaccounts', 'events',
  'apps/deployments', 'apps/statefulsets', 'apps/daemonsets', 'apps/replicasets', 'batch/jobs', 'batch/cronjobs',
  'networking.k8s.io/ingresses', 'discovery.k8s.io/endpointslices', 'policy/poddisruptionbudgets',
  'autoscaling/horizontalpodautoscalers', 'kublambda.io/lambdas',
];

export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const WATCHER_COMPONENT = 'event-watcher';
/** On watcher objects: the lambda's namespace, which objects in a watched namespace cannot show otherwise. */
export const LAMBDA_NAMESPACE_LABEL = 'kublambda.io/lambda-namespace';
/** A digest of the watcher's configuration and credentials on the pod template: a change rolls the pods. */
export const WATCHER_CONFIG_DIGEST_ANNOTATION = 'kublambda.io/watcher-config-digest';
export const WATCHER_PORT = 8080;
export const WATCHER_REDIS_URL_KEY = 'REDIS_URL';
const READ_VERBS = ['get', 'list', 'watch'];
const WATCHER_PREFIX = 'kublambda-watch-';

/** What discovery says of the resource behind an apiVersion and kind. */
export interface DiscoveredResource {
  group: string;
  version: string;
  /** The plural resource name, for example configmaps. */
  resource: string;
  kind: string;
  namespaced: boolean;
}

export type WatchRefusalReason = 'UnknownKind' | 'Forbidden' | 'InvalidCondition';

export type WatchTriggerResolution =
  | { ok: true; triggers: ResolvedWatchTrigger[] }
  | { ok: false; reason: WatchRefusalReason; message: string };

/**
 * The name of the lambda's watcher objects in its own namespace. Lambda names are at most 53
 * characters, so it stays within a DNS subdomain (253); no Service (63) is ever named after it.
 */
export function watcherObjectName(lambdaName: string): string {
  return `${WATCHER_PREFIX}${lambdaName}`;
}

/** The name of its Role and RoleBinding in another namespace, where lambdas of several namespaces may share a name. Namespaces have no dots. */
export function crossNamespaceWatcherObjectName(lambda: LambdaName): string {
  return `${WATCHER_PREFIX}${lambda.namespace}.${lambda.name}`;
}

/** "group/resource" as WATCHABLE_RESOURCES writes it. */
export function groupResource(group: string, resource: string): string {
  return group ? `${group}/${resource}` : resource;
}

/** The API group of an apiVersion ("" for the core group's "v1"). */
export function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
}

/**
 * Decides whether every watch trigger may run and resolves them for the watcher. `discovered[i]`
 * is what discovery found for trigger i (undefined: no such kind in that apiVersion). Any
 * refusal refuses the whole watcher: it runs all of a lambda's triggers or none.
 */
export function resolveWatchTriggers(lambda: Lambda, discovered: ReadonlyArray<DiscoveredResource | undefined>, config: WatcherPlatformConfig): WatchTriggerResolution {
  const lambdaNamespace = lambda.metadata.namespace!;
  const triggers = lambda.spec.triggers?.watch ?? [];
  const refusals: Array<{ reason: WatchRefusalReason; message: string }> = [];
  const resolved: ResolvedWatchTrigger[] = [];
  for (const [index, trigger] of triggers.entries()) {
    const refuse = (reason: WatchRefusalReason, message: string, field = '') =>
      refusals.push({ reason, message: `spec.triggers.watch[${index}]${field && `.${field}`}: ${message}` });
    const what = `${trigger.apiVersion} ${trigger.kind}`;
    const namespace = trigger.namespace || lambdaNamespace;
    const found = discovered[index];
    if (namespace !== lambdaNamespace && !(config.namespaceGrants[lambdaNamespace] ?? []).includes(namespace)) {
      const granted = config.namespaceGrants[lambdaNamespace] ?? [];
      refuse('Forbidden', `lambdas of namespace ${lambdaNamespace} may not watch namespace ${namespace} (${granted.length ? `granted: ${granted.join(', ')}` : 'no other namespace is granted'}; WATCH_NAMESPACE_GRANTS)`);
    } else if (!found) {
      refuse('UnknownKind', `the API server knows no kind ${trigger.kind} in apiVersion ${trigger.apiVersion}`);
    } else if (!found.namespaced) {
      refuse('Forbidden', `${what} is cluster-scoped, and cluster-scoped kinds cannot be watched`);
    } else if (!config.watchableResources.includes(groupResource(found.group, found.resource))) {
      refuse('Forbidden', `${what} (${groupResource(found.group, found.resource)}) may not be watched; the platform allows ${config.watchableResources.join(', ')}`);
    } else {
      const compiled = trigger.condition === undefined ? undefined : compileCondition(trigger.condition);
      if (compiled && !compiled.ok) refuse('InvalidCondition', compiled.message, 'condition');
      else resolved.push(resolveTrigger(trigger, index, found, namespace));
    }
  }
  if (refusals.length === 0) return { ok: true, triggers: resolved };
  return { ok: false, reason: refusals[0]!.reason, message: refusals.map((r) => r.message).join('; ') };
}

function resolveTrigger(trigger: WatchTrigger, index: number, found: DiscoveredResource, namespace: string): ResolvedWatchTrigger {
  const stream = { apiVersion: trigger.apiVersion, resource: found.resource, namespace, labelSelector: trigger.labelSelector || undefined, fieldSelector: trigger.fieldSelector || undefined };
  return {
    id: watchTriggerId(stream),
    index,
    ...stream,
    kind: trigger.kind,
    // The CRD defaults events; a Lambda stored before that default still means all three.
    events: trigger.events?.length ? [...trigger.events] : [...WATCH_EVENT_TYPES],
    ...(trigger.condition !== undefined ? { condition: trigger.condition } : {}),
  };
}

/** Read access to exactly the watched resources: one rule per API group, resources sorted and deduplicated. */
export function watcherRoleRules(triggers: ReadonlyArray<Pick<ResolvedWatchTrigger, 'apiVersion' | 'resource'>>): k8s.V1PolicyRule[] {
  const byGroup = new Map<string, Set<string>>();
  for (const trigger of triggers) {
    const group = groupOf(trigger.apiVersion);
    byGroup.set(group, (byGroup.get(group) ?? new Set()).add(trigger.resource));
  }
  return [...byGroup.keys()].sort().map((group) => ({ apiGroups: [group], resources: [...byGroup.get(group)!].sort(), verbs: [...READ_VERBS] }));
}

/**
 * The watcher's Redis password: derived from the first env encryption key, so every controller
 * replica computes the same one without storing it, and rotating that key rotates it.
 */
export function watcherRedisPassword(key: Buffer, lambda: LambdaName): string {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `kublambda watcher redis password ${lambda.namespace}/${lambda.name}`, 32)).toString('base64url');
}

/** The watcher's REDIS_URL: the host, port and options of `base`, with the watcher's own user. */
export function watcherRedisUrl(base: string, lambda: LambdaName, password: string): string {
  return withRedisCredentials(base, watcherRedisUser(lambda), password);
}

export interface WatcherObjects {
  serviceAccount: k8s.V1ServiceAccount;
  /** One per watched namespace: the lambda's own first, owned by it; in other namespaces unowned. */
  roles: k8s.V1Role[];
  roleBindings: k8s.V1RoleBinding[];
  secret: k8s.V1Secret;
  deployment: k8s.V1Deployment;
}

export interface WatcherInputs {
  config: WatcherPlatformConfig;
  http: HttpExposureConfig;
  /** The REDIS_URL the watcher gets, with its own user and password. */
  redisUrl: string;
}

export function watcherConfig(lambda: Lambda, triggers: ResolvedWatchTrigger[]): WatcherConfig {
  return {
    lambda: { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! },
    target: { host: lambda.spec.triggers?.http?.host ?? '', path: lambdaPath(lambda) },
    triggers,
  };
}

/** Labels of every watcher object, wherever it is. */
export function watcherLabels(lambda: LambdaName): Record<string, string> {
  return { [MANAGED_BY_LABEL]: FIELD_MANAGER, [LAMBDA_LABEL]: lambda.name, [LAMBDA_NAMESPACE_LABEL]: lambda.namespace, [COMPONENT_LABEL]: WATCHER_COMPONENT };
}

/** Whether an object carries the watcher labels of this lambda. */
export function isWatcherObjectOf(object: k8s.KubernetesObject, lambda: LambdaName): boolean {
  const labels = object.metadata?.labels ?? {};
  return labels[COMPONENT_LABEL] === WATCHER_COMPONENT && labels[LAMBDA_LABEL] === lambda.name && (labels[LAMBDA_NAMESPACE_LABEL] ?? object.metadata?.namespace) === lambda.namespace;
}

/** The lambda a watcher object belongs to, from its labels ("namespace/name"). */
export function lambdaKeyOfWatcherObject(object: k8s.KubernetesObject): string | undefined {
  const labels = object.metadata?.labels ?? {};
  const name = labels[LAMBDA_LABEL];
  const namespace = labels[LAMBDA_NAMESPACE_LABEL] ?? object.metadata?.namespace;
  return labels[COMPONENT_LABEL] === WATCHER_COMPONENT && name && namespace ? `${namespace}/${name}` : undefined;
}

export function desiredWatcherObjects(lambda: Lambda, triggers: ResolvedWatchTrigger[], inputs: WatcherInputs): WatcherObjects {
  const ref = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  const name = watcherObjectName(ref.name);
  const labels = watcherLabels(ref);
  const owned = () => ownedMetadata(lambda, name, labels);
  const namespaces = [...new Set([ref.namespace, ...triggers.map((t) => t.namespace)])];
  const rbacMetadata = (namespace: string): k8s.V1ObjectMeta =>
    // Owner references cannot cross namespaces: the controller removes those itself.
    namespace === ref.namespace ? owned() : { name: crossNamespaceWatcherObjectName(ref), namespace, labels };
  const roles: k8s.V1Role[] = [];
  const roleBindings: k8s.V1RoleBinding[] = [];
  for (const namespace of namespaces) {
    const rules = watcherRoleRules(triggers.filter((t) => t.namespace === namespace));
    if (rules.length === 0) continue;
    const metadata = rbacMetadata(namespace);
    roles.push(withDigest({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata, rules }));
    roleBindings.push(
      withDigest({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata,
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: metadata.name! },
        subjects: [{ kind: 'ServiceAccount', name, namespace: ref.namespace }],
      }),
    );
  }
  const secretData = { [WATCHER_REDIS_URL_KEY]: Buffer.from(inputs.redisUrl).toString('base64') };
  const configJson = JSON.stringify(watcherConfig(lambda, triggers));
  const podLabels = { [COMPONENT_LABEL]: WATCHER_COMPONENT, [LAMBDA_LABEL]: ref.name };
  const { platformNamespace, clusterDomain } = inputs.http;
  return {
    serviceAccount: withDigest({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: owned() }),
    roles,
    roleBindings,
    secret: withDigest({ apiVersion: 'v1', kind: 'Secret', metadata: owned(), type: 'Opaque', data: secretData }),
    deployment: withDigest({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: owned(),
      spec: {
        replicas: 1,
        // One watcher at a time: two would race for the lease and deliver twice while both run.
        strategy: { type: 'Recreate' },
        selector: { matchLabels: podLabels },
        template: {
          metadata: {
            labels: { ...podLabels, [MANAGED_BY_LABEL]: FIELD_MANAGER },
            annotations: { [WATCHER_CONFIG_DIGEST_ANNOTATION]: digestOf([configJson, secretData]) },
          },
          spec: {
            serviceAccountName: name,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: WATCHER_COMPONENT,
                image: inputs.config.image,
                imagePullPolicy: 'IfNotPresent',
                env: [
                  { name: WATCHER_CONFIG_ENV, value: configJson },
                  { name: 'RUNNER_URL', value: `http://${RUNNER_SERVICE}.${platformNamespace}.svc.${clusterDomain}` },
                  { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name, key: WATCHER_REDIS_URL_KEY } } },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'PORT', value: String(WATCHER_PORT) },
                ],
                ports: [{ name: 'http', containerPort: WATCHER_PORT, protocol: 'TCP' }],
                livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
                resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
                securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              },
            ],
            // A read-only root: what little Node.js writes goes to an emptyDir.
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '16Mi' } }],
          },
        },
      },
    }),
  };
}

function digestOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** WatchersReady from the watcher Deployment as the API server reports it (undefined: not seen yet). */
export function watchersCondition(deployment: k8s.V1Deployment | undefined): ConditionUpdate {
  const type = 'WatchersReady';
  if (!deployment) return { type, status: 'Unknown', reason: 'RollingOut', message: 'the watcher Deployment is being created' };
  const name = deployment.metadata?.name;
  const conditions = deployment.status?.conditions ?? [];
  const failed =
    conditions.find((c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded') ??
    conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (failed) return { type, status: 'False', reason: 'DeploymentFailed', message: `Deployment ${name}: ${failed.message ?? failed.reason ?? failed.type}` };
  const status = deployment.status ?? {};
  const current = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) && (status.updatedReplicas ?? 0) >= 1;
  const available = conditions.some((c) => c.type === 'Available' && c.status === 'True') && (status.availableReplicas ?? 0) >= 1;
  if (current && available) return { type, status: 'True', reason: 'Available', message: `Deployment ${name} is available` };
  return { type, status: 'Unknown', reason: 'RollingOut', message: `Deployment ${name} is rolling out (${status.updatedReplicas ?? 0} updated, ${status.availableReplicas ?? 0} available)` };
}
