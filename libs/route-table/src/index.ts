import { confirmReplicated, type RedisConnection, type WriteConfirmation } from '@kublambda/redis-connection';

// Route records tell runners which asset serves which path. api-controller writes them;
// runners load them all at start and follow the change announcements.

export { ENV_ENCRYPTION_KEYS, EnvDecryptionError, EnvKeyRing, decryptRouteEnv, generateEnvEncryptionKey, parseEnvKeyRing, type EnvEncryptionKey, type EnvValueContext } from './env-encryption.ts';
export {
  ROUTE_CLAIMS_BY_LAMBDA_KEY,
  ROUTE_CLAIMS_KEY,
  ROUTE_CLAIM_SCRIPTS,
  ancestorClaims,
  claimParts,
  claimRoute,
  isClaimAtOrBelow,
  isPathAtOrBelow,
  normalizePathPrefix,
  releaseRouteClaim,
  routeClaim,
  type ClaimOptions,
  type ClaimOutcome,
} from './route-claims.ts';

export { STANDALONE_ASSET_FILE, STANDALONE_LAMBDA_ENV, STANDALONE_LAMBDA_FILE, standaloneRoute, type StandaloneLambda } from './standalone.ts';

// The hash tag keeps the routes and their version in one slot of a Redis Cluster, so one
// script changes both.
export const ROUTES_KEY = 'kublambda:{routes}';
/** Counts route changes: a runner that sees it ahead of the announcements it heard missed one. */
export const ROUTES_VERSION_KEY = 'kublambda:{routes}:version';
export const ROUTE_CHANGES_CHANNEL = 'kublambda:route-changes';

export interface RouteRecord {
  /** "<namespace>/<name>" */
  key: string;
  namespace: string;
  name: string;
  /** Requests whose path starts with this prefix (longest match wins) go to this lambda. */
  pathPrefix: string;
  host?: string;
  artifact: { digest: string; size: number };
  runtime: 'nodejs';
  timeoutSeconds: number;
  memoryMiB: number;
  concurrency: number;
  /** CPU time one request may use (spec.cpuMillis). */
  cpuMillis: number;
  /** 'none': the lambda's workers run without network access (spec.network). */
  network: 'outbound' | 'none';
  stateTables: string[];
  /** api-controller resolves the spec's valueFrom references before publishing. */
  env: RouteEnvEntry[];
  /** The Lambda generation this record was made from. */
  generation: number;
}

/**
 * One env variable of a lambda: literal values and ConfigMap values in plaintext, Secret values
 * encrypted (see EnvKeyRing).
 */
export type RouteEnvEntry = { name: string; value: string } | { name: string; encrypted: EncryptedEnvValue };

/** AES-256-GCM, each part base64; authenticated together with the lambda key and the env name. */
export interface EncryptedEnvValue {
  /** Which key of ENV_ENCRYPTION_KEYS encrypted it, so keys can rotate. */
  keyId: string;
  /** 12 random bytes, fresh for every value. */
  iv: string;
  ciphertext: string;
  tag: string;
}

export interface RouteChange {
  key: string;
  action: 'put' | 'delete';
  /** The route table's version after this change (ROUTES_VERSION_KEY). */
  version: number;
}

/** The route table as one read saw it: every record and the version they are at. */
export interface RouteTableSnapshot {
  routes: RouteRecord[];
  version: number;
}

export function routeKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export async function readRoute(redis: RedisConnection, key: string): Promise<RouteRecord | undefined> {
  const json = await redis.hget(ROUTES_KEY, key);
  return json ? (JSON.parse(json) as RouteRecord) : undefined;
}

export async function loadRoutes(redis: RedisConnection): Promise<RouteRecord[]> {
  return (await loadRouteTable(redis)).routes;
}

/** Every record and the version, in one transaction. */
export async function loadRouteTable(redis: RedisConnection): Promise<RouteTableSnapshot> {
  const results = await redis.multi().hgetall(ROUTES_KEY).get(ROUTES_VERSION_KEY).exec();
  failOnError(results);
  const [[, records], [, version]] = results as [[null, Record<string, string>], [null, string | null]];
  return { routes: Object.values(records).map((json) => JSON.parse(json) as RouteRecord), version: Number(version ?? 0) };
}

/** The route table's version now. */
export async function readRoutesVersion(redis: RedisConnection): Promise<number> {
  return Number((await redis.get(ROUTES_VERSION_KEY)) ?? 0);
}

// KEYS: routes, version; ARGV: channel, route key, record JSON or '' to remove. Changes the
// record, counts the change and announces it with the new version, in one step.
const CHANGE_ROUTE_SCRIPT = `
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2]) else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
local version = redis.call('INCR', KEYS[2])
local action = 'put'
if ARGV[3] == '' then action = 'delete' end
redis.call('PUBLISH', ARGV[1], cjson.encode({key = ARGV[2], action = action, version = version}))
return version
`;

/** The route-change script, for checks of what it calls (the Redis users' rules in libs/redis-acl). */
export const ROUTE_CHANGE_SCRIPTS = [CHANGE_ROUTE_SCRIPT];

async function changeRoute(redis: RedisConnection, key: string, json: string, confirmation?: WriteConfirmation): Promise<void> {
  await redis.eval(CHANGE_ROUTE_SCRIPT, 2, ROUTES_KEY, ROUTES_VERSION_KEY, ROUTE_CHANGES_CHANNEL, key, json);
  if (confirmation) await confirmReplicated(redis, ROUTES_KEY, confirmation.replicas, confirmation.timeoutMs);
}

/** Stores the record and announces it, atomically; with `confirmation`, once replicas hold it. */
export async function publishRoute(redis: RedisConnection, route: RouteRecord, confirmation?: WriteConfirmation): Promise<void> {
  await changeRoute(redis, route.key, JSON.stringify(route), confirmation);
}

/** Removes the record (if any) and announces it, atomically; with `confirmation`, once replicas hold that. */
export async function removeRoute(redis: RedisConnection, key: string, confirmation?: WriteConfirmation): Promise<void> {
  await changeRoute(redis, key, '', confirmation);
}

/** Calls onChange for every announced change. `subscriber` must be a connection of its own. */
export async function followRouteChanges(subscriber: RedisConnection, onChange: (change: RouteChange) => void): Promise<void> {
  subscriber.on('message', (channel: string, message: string) => {
    if (channel === ROUTE_CHANGES_CHANNEL) onChange(JSON.parse(message) as RouteChange);
  });
  await subscriber.subscribe(ROUTE_CHANGES_CHANNEL);
}

function failOnError(results: Array<[Error | null, unknown]> | null): void {
  const error = results?.find(([error]) => error)?.[0];
  if (error) throw error;
  if (!results) throw new Error('route transaction was aborted');
}
