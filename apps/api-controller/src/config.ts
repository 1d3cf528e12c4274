import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, parseAdminListener, readLeaderElection, type AdminListener, type Env, type LeaderElectionSettings } from '@kublambda/config';
import { hasRedisCredentials, parseRedisUrl, readRedisSettings, redactRedisUrl, type WriteConfirmation } from '@kublambda/redis-connection';
import { normalizePathPrefix, parseEnvKeyRing, type EnvKeyRing } from '@kublambda/route-table';
import { DEFAULT_EVENT_WATCHER_IMAGE, DEFAULT_WATCHABLE_RESOURCES, type WatcherPlatformConfig } from './desired-watcher.ts';
import { RUNNER_SERVICE, type HttpExposureConfig } from './http-exposure.ts';
import { formatGrant, isNamespaceName, type PathPolicy, type RouteGrant } from './path-ownership.ts';

export interface ApiControllerConfig {
  redisUrl: string;
  /** REDIS_WRITE_REPLICAS: route changes are done once that many replicas hold them. */
  redisWriteConfirmation?: WriteConfirmation;
  artifactStore: ArtifactStoreConfig;
  /** Encrypts env values taken from Secrets in route records (and reads the previous ones). */
  envKeys: EnvKeyRing;
  /** This replica's name in the leader-election Lease and in Events. */
  identity: string;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  reconcileConcurrency: number;
  relistIntervalMs: number;
  /** Reconcile only lambdas in this namespace; all namespaces when unset. */
  watchNamespace?: string;
  http: HttpExposureConfig;
  /** Which namespaces own which hosts and paths (ROUTE_GRANTS, ROUTE_GRANTS_ONLY). */
  paths: PathPolicy;
  /** Event-watchers of lambdas with watch triggers (EVENT_WATCHER_IMAGE, WATCHABLE_RESOURCES, WATCH_NAMESPACE_GRANTS, WATCHER_REDIS_URL). */
  watchers: WatcherPlatformConfig;
  /** Container images of lambdas (IMAGE_BUILDS and the IMAGE_REGISTRY_* variables); undefined when IMAGE_BUILDS=off. */
  images?: ImageBuildsConfig;
  /** The admin API for the CLI (admin-api.ts): ADMIN_PORT, ADMIN_HOST; off without ADMIN_PORT. */
  admin?: AdminConfig;
}

export interface AdminConfig extends AdminListener {
  /** Where a retried dead letter is sent (RUNNER_URL; default: the runner Service), as event-watchers send events. */
  runnerUrl: string;
}

export interface ImageBuildsConfig {
  /** How api-controller reaches the registry: it deletes the images of deleted lambdas and superseded ones. */
  registry: { url: string; username?: string; password?: string; insecure: boolean };
  /** Repositories are <prefix>/<namespace>-<name>. */
  repositoryPrefix: string;
}

export function parseApiControllerConfig(env: Env): ApiControllerConfig {
  const read = new EnvReader(env);
  const config = {
    ...readRedisSettings(read),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    envKeys: read.nested((env) => parseEnvKeyRing(env.ENV_ENCRYPTION_KEYS))!,
    ...leaseFields(readLeaderElection(read, 'kublambda-api-controller')),
    reconcileConcurrency: read.integer('RECONCILE_CONCURRENCY', 8, { min: 1, max: 256 }),
    relistIntervalMs: read.integer('RELIST_INTERVAL_MS', 600_000, { min: 1_000, max: 86_400_000 }),
    watchNamespace: read.string('WATCH_NAMESPACE', '') || undefined,
    http: {
      platformNamespace: read.string('PLATFORM_NAMESPACE', read.string('POD_NAMESPACE', 'kublambda-system')),
      clusterDomain: read.string('CLUSTER_DOMAIN', 'cluster.local'),
      ingressClassName: read.string('INGRESS_CLASS_NAME', ''),
      ingressAnnotations: read.nested(parseIngressAnnotations)!,
      externalBaseUrl: read.nested(parseExternalBaseUrl),
      externalHostSuffix: read.nested(parseExternalHostSuffix),
    },
    paths: {
      grants: read.nested(parseRouteGrants) ?? [],
      grantsOnly: read.nested(parseRouteGrantsOnly) ?? false,
    },
    watchers: {
      image: read.string('EVENT_WATCHER_IMAGE', DEFAULT_EVENT_WATCHER_IMAGE),
      watchableResources: read.nested(parseWatchableResources) ?? [],
      namespaceGrants: read.nested(parseWatchNamespaceGrants) ?? {},
      redisUrl: read.nested(parseWatcherRedisUrl),
    },
    images: read.nested(parseImageBuilds),
  };
  const admin = read.nested((env) => parseAdmin(env, config.http));
  read.finish('api-controller');
  return { ...config, ...(admin ? { admin } : {}) };
}

function parseAdmin(env: Env, http: HttpExposureConfig): AdminConfig | undefined {
  const { listener, problems } = parseAdminListener(env, ['RUNNER_URL']);
  const runnerUrl = env.RUNNER_URL?.trim() || `http://${RUNNER_SERVICE}.${http.platformNamespace}.svc.${http.clusterDomain}`;
  if (!/^https?:\/\/[^/?#]+$/.test(runnerUrl)) problems.push(`RUNNER_URL must be an http:// or https:// URL with no path, for example http://127.0.0.1:8080, not "${runnerUrl}"`);
  if (problems.length > 0) throw new Error(problems.join('\n  - '));
  return listener ? { ...listener, runnerUrl } : undefined;
}

function leaseFields({ namespace, ...election }: LeaderElectionSettings) {
  return { ...election, leaseNamespace: namespace };
}

function parseExternalHostSuffix(env: Env): string | undefined {
  const raw = env.EXTERNAL_HOST_SUFFIX?.trim();
  if (!raw) return undefined;
  if (!/^\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/.test(raw)) throw new Error(`EXTERNAL_HOST_SUFFIX must be a domain suffix with an optional port, for example .localhost:8080, not "${raw}"`);
  return raw;
}

function parseIngressAnnotations(env: Env): Record<string, string> {
  const raw = env.INGRESS_ANNOTATIONS?.trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`INGRESS_ANNOTATIONS must be a JSON object of strings: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((value) => typeof value === 'string')) {
    throw new Error(`INGRESS_ANNOTATIONS must be a JSON object of strings, for example {"nginx.ingress.kubernetes.io/proxy-body-size":"32m"}, not ${raw}`);
  }
  return parsed as Record<string, string>;
}

/** Where the ingress controller is reached from outside, without a path: lambda paths go after it. */
function parseExternalBaseUrl(env: Env): string | undefined {
  const raw = env.EXTERNAL_BASE_URL?.trim();
  if (!raw) return undefined;
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new Error(`EXTERNAL_BASE_URL must be an http:// or https:// URL with no path, query or credentials, for example http://lambdas.example.com, not "${raw}"`);
  }
  return url.origin;
}

// The same patterns the CRD holds for spec.triggers.http.host and .path, so a grant can name
// exactly what a lambda can ask for.
const HOST = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PATH = /^\/([A-Za-z0-9_~-][A-Za-z0-9._~-]*(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*\/?)?$/;
const GRANTS_EXAMPLE = '{"shop":["shop.example.com","api.example.com/shop","/shop"]}';

/**
 * ROUTE_GRANTS: a JSON object, namespace -> list of "host" (the whole host), "host/path-prefix"
 * or "/path-prefix" (on any host). Two namespaces may not be granted the same place.
 */
function parseRouteGrants(env: Env): RouteGrant[] {
  const raw = env.ROUTE_GRANTS?.trim();
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`ROUTE_GRANTS must be a JSON object of namespace -> list of hosts and paths, for example ${GRANTS_EXAMPLE}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`ROUTE_GRANTS must be a JSON object of namespace -> list of hosts and paths, for example ${GRANTS_EXAMPLE}, not ${raw}`);
  }
  const grants: RouteGrant[] = [];
  const holders = new Map<string, string>();
  for (const [namespace, places] of Object.entries(parsed)) {
    if (!isNamespaceName(namespace)) throw new Error(`ROUTE_GRANTS: "${namespace}" is not a namespace name`);
    if (!Array.isArray(places) || !places.every((place) => typeof place === 'string')) {
      throw new Error(`ROUTE_GRANTS: the grants of namespace ${namespace} must be a list of strings ("host", "host/path-prefix" or "/path-prefix"), not ${JSON.stringify(places)}`);
    }
    for (const place of places) {
      const grant = { namespace, ...parseGrantedPlace(namespace, place) };
      const where = formatGrant(grant);
      const holder = holders.get(where);
      if (holder && holder !== namespace) throw new Error(`ROUTE_GRANTS: ${where} is granted to both namespace ${holder} and namespace ${namespace}`);
      if (!holder) grants.push(grant);
      holders.set(where, namespace);
    }
  }
  return grants;
}

function parseGrantedPlace(namespace: string, place: string): { host: string; pathPrefix: string } {
  const slash = place.indexOf('/');
  const host = slash === -1 ? place : place.slice(0, slash);
  const path = slash === -1 ? '/' : place.slice(slash);
  if ((host && !HOST.test(host)) || host.length > 253 || !PATH.test(path) || place === '') {
    throw new Error(`ROUTE_GRANTS: "${place}" (namespace ${namespace}) is not "host", "host/path-prefix" or "/path-prefix", for example "shop.example.com", "api.example.com/shop" or "/shop"`);
  }
  return { host, pathPrefix: normalizePathPrefix(path) };
}

function parseRouteGrantsOnly(env: Env): boolean {
  const raw = env.ROUTE_GRANTS_ONLY?.trim().toLowerCase();
  if (!raw || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new Error(`ROUTE_GRANTS_ONLY must be true or false, not "${env.ROUTE_GRANTS_ONLY}"`);
}

const GROUP_RESOURCE = /^(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * WATCHABLE_RESOURCES: comma-separated "group/resource" (core resources without a group). The
 * controller's ClusterRole must read each of them, or the Roles it makes are refused as escalation.
 */
function parseWatchableResources(env: Env): string[] {
  const raw = env.WATCHABLE_RESOURCES?.trim();
  if (!raw) return [...DEFAULT_WATCHABLE_RESOURCES];
  const resources = raw.split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const resource of resources) {
    if (!GROUP_RESOURCE.test(resource)) {
      throw new Error(`WATCHABLE_RESOURCES: "${resource}" is not "group/resource" or, for the core group, "resource" (for example configmaps, apps/deployments)`);
    }
  }
  // Watching Secrets hands their values to whoever reads the watcher's deliveries: never.
  if (resources.includes('secrets')) throw new Error('WATCHABLE_RESOURCES must not list secrets: a watcher would hand every Secret of a namespace to a lambda');
  return [...new Set(resources)];
}

const NAMESPACE_GRANTS_EXAMPLE = '{"ops":["shop","billing"]}';

/** WATCH_NAMESPACE_GRANTS: a JSON object, lambda namespace -> the other namespaces its lambdas may watch. */
function parseWatchNamespaceGrants(env: Env): Record<string, string[]> {
  const raw = env.WATCH_NAMESPACE_GRANTS?.trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`WATCH_NAMESPACE_GRANTS must be a JSON object of namespace -> list of namespaces, for example ${NAMESPACE_GRANTS_EXAMPLE}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`WATCH_NAMESPACE_GRANTS must be a JSON object of namespace -> list of namespaces, for example ${NAMESPACE_GRANTS_EXAMPLE}, not ${raw}`);
  }
  const grants: Record<string, string[]> = {};
  for (const [namespace, watched] of Object.entries(parsed)) {
    if (!isNamespaceName(namespace)) throw new Error(`WATCH_NAMESPACE_GRANTS: "${namespace}" is not a namespace name`);
    if (!Array.isArray(watched) || !watched.every((w) => typeof w === 'string' && isNamespaceName(w))) {
      throw new Error(`WATCH_NAMESPACE_GRANTS: the grants of namespace ${namespace} must be a list of namespace names, not ${JSON.stringify(watched)}`);
    }
    grants[namespace] = [...new Set(watched as string[])];
  }
  return grants;
}

/** WATCHER_REDIS_URL: where watcher pods reach Redis when that differs from the controller's REDIS_URL host. */
function parseWatcherRedisUrl(env: Env): string | undefined {
  const raw = env.WATCHER_REDIS_URL?.trim();
  if (!raw) return undefined;
  let valid = !hasRedisCredentials(raw);
  try {
    parseRedisUrl(raw);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new Error(
      `WATCHER_REDIS_URL must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL without credentials (each watcher gets its own user), for example redis://redis.kublambda-system:6379, not "${redactRedisUrl(raw)}"`,
    );
  }
  return raw;
}

// The distribution spec's repository name grammar, one path component after another.
const REPOSITORY_COMPONENT = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/;
/** Namespaces and lambda names are DNS labels: at most 63 characters each. */
const LONGEST_LAMBDA_SUFFIX = '/'.length + 63 + '-'.length + 63;
/** Many clients refuse a reference whose host[:port]/repository exceeds 255 characters (distribution spec). */
const LONGEST_REPOSITORY_REFERENCE = 255;

/** IMAGE_BUILDS=off (default) or on; with on, the registry and repository prefix. */
function parseImageBuilds(env: Env): ImageBuildsConfig | undefined {
  const mode = env.IMAGE_BUILDS?.trim().toLowerCase() || 'off';
  if (mode === 'off') return undefined;
  if (mode !== 'on') throw new Error(`IMAGE_BUILDS must be on or off, not "${env.IMAGE_BUILDS}"`);
  const problems: string[] = [];
  const raw = env.IMAGE_REGISTRY_URL?.trim() ?? '';
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  const insecure = parseBoolean(env, 'IMAGE_REGISTRY_INSECURE', problems);
  if (!raw) problems.push('IMAGE_REGISTRY_URL is required with IMAGE_BUILDS=on');
  else if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
    problems.push(`IMAGE_REGISTRY_URL must be the registry's http:// or https:// base URL with no path, query or credentials, for example https://registry.example.com, not "${raw}"`);
  } else if (url.protocol === 'http:' && !insecure) problems.push(`IMAGE_REGISTRY_URL ${raw} is plain http: set IMAGE_REGISTRY_INSECURE=true to allow it`);
  const username = env.IMAGE_REGISTRY_USERNAME?.trim() || undefined;
  const password = env.IMAGE_REGISTRY_PASSWORD || undefined;
  if ((username === undefined) !== (password === undefined)) problems.push('IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD go together: set both or neither');
  const repositoryPrefix = env.IMAGE_REPOSITORY_PREFIX?.trim() || 'kublambda';
  if (!repositoryPrefix.split('/').every((component) => REPOSITORY_COMPONENT.test(component))) {
    problems.push(`IMAGE_REPOSITORY_PREFIX must be a repository path of lowercase components such as kublambda or team/lambdas, not "${repositoryPrefix}"`);
  } else if (url) {
    const longest = url.host.length + '/'.length + repositoryPrefix.length + LONGEST_LAMBDA_SUFFIX;
    if (longest > LONGEST_REPOSITORY_REFERENCE) {
      problems.push(`IMAGE_REPOSITORY_PREFIX "${repositoryPrefix}" is too long: with ${url.host} and the longest namespace and lambda names, a reference would be ${longest} characters, more than ${LONGEST_REPOSITORY_REFERENCE}`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('\n  - '));
  return { registry: { url: url!.origin, ...(username ? { username, password } : {}), insecure }, repositoryPrefix };
}

function parseBoolean(env: Env, name: string, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw || raw === 'false') return false;
  if (raw === 'true') return true;
  problems.push(`${name} must be true or false, not "${env[name]}"`);
  return false;
}
