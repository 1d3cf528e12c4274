import type { Redis } from 'ioredis';

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

export const ROUTES_KEY = 'kublambda:routes';
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
}

export function routeKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export async function readRoute(redis: Redis, key: string): Promise<RouteRecord | undefined> {
  const json = await redis.hget(ROUTES_KEY, key);
  return json ? (JSON.parse(json) as RouteRecord) : undefined;
}

export async function loadRoutes(redis: Redis): Promise<RouteRecord[]> {
  return Object.values(await redis.hgetall(ROUTES_KEY)).map((json) => JSON.parse(json) as RouteRecord);
}

/** Stores the record and announces it, atomically. */
export async function publishRoute(redis: Redis, route: RouteRecord): Promise<void> {
  const change: RouteChange = { key: route.key, action: 'put' };
  await redis.multi().hset(ROUTES_KEY, route.key, JSON.stringify(route)).publish(ROUTE_CHANGES_CHANNEL, JSON.stringify(change)).exec().then(failOnError);
}

/** Removes the record (if any) and announces it, atomically. */
export async function removeRoute(redis: Redis, key: string): Promise<void> {
  const change: RouteChange = { key, action: 'delete' };
  await redis.multi().hdel(ROUTES_KEY, key).publish(ROUTE_CHANGES_CHANNEL, JSON.stringify(change)).exec().then(failOnError);
}

/** Calls onChange for every announced change. `subscriber` must be a connection of its own. */
export async function followRouteChanges(subscriber: Redis, onChange: (change: RouteChange) => void): Promise<void> {
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
