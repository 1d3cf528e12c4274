import type { RedisConnection } from '@kublambda/redis-connection';

// Route table entries are global across namespaces, so one host+path can belong to one lambda
// only. Claims decide which: the first lambda to claim a host+path holds it until it lets go
// (another path, or deleted); later claimants are refused and told who holds it. Redis runs
// each claim atomically, so every controller replica and every pass agrees on the holder.
//
// The runner sends a request to the longest prefix on its host, so a path below one held by
// another namespace would take that namespace's traffic (and its Authorization headers): such a
// claim is refused too, unless the claimant's namespace owns the path by rule (its own
// /<namespace>/ prefix, or a grant in platform configuration), which api-controller decides.

// One hash tag for both, so a claim script may use both in one slot of a Redis Cluster.
/** host+path claim -> "<namespace>/<name>" of the lambda holding it. */
export const ROUTE_CLAIMS_KEY = 'kublambda:{route-claims}';
/** "<namespace>/<name>" -> the claim that lambda holds, so moving or deleting it frees the old one. */
export const ROUTE_CLAIMS_BY_LAMBDA_KEY = 'kublambda:{route-claims}:by-lambda';

/** A path prefix as the runner matches it: "/shop/" and "/shop" are the same prefix; "" is "/". */
export function normalizePathPrefix(pathPrefix: string): string {
  if (pathPrefix === '') return '/';
  return pathPrefix.length > 1 && pathPrefix.endsWith('/') ? pathPrefix.slice(0, -1) : pathPrefix;
}

/**
 * What two routes must not share: the host (empty for any host) and the path prefix as the
 * runner matches it, where "/shop/" and "/shop" are the same prefix.
 */
export function routeClaim(host: string | undefined, pathPrefix: string): string {
  return `${host ?? ''}${normalizePathPrefix(pathPrefix)}`;
}

/** The host ("" for any host) and path of a claim; a host never holds a "/", a path starts with one. */
export function claimParts(claim: string): { host: string; path: string } {
  const slash = claim.indexOf('/');
  return { host: claim.slice(0, slash), path: claim.slice(slash) };
}

/** The claims on the same host whose prefix covers this one, nearest first: "h/a/b" -> "h/a", "h/". */
export function ancestorClaims(claim: string): string[] {
  const { host, path } = claimParts(claim);
  const ancestors: string[] = [];
  for (let prefix = path; prefix !== '/'; ) {
    const end = prefix.lastIndexOf('/');
    prefix = end === 0 ? '/' : prefix.slice(0, end);
    ancestors.push(`${host}${prefix}`);
  }
  return ancestors;
}

/** Whether a normalised path is the prefix itself or below it, as the runner matches prefixes. */
export function isPathAtOrBelow(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);
}

/** Whether `claim` is `above` itself or a path below it on the same host. */
export function isClaimAtOrBelow(claim: string, above: string): boolean {
  const a = claimParts(above);
  const c = claimParts(claim);
  return a.host === c.host && isPathAtOrBelow(c.path, a.path);
}

export type ClaimOutcome =
  | { held: true; released?: string }
  /** `holder` holds `heldClaim`: the claim asked for, or one above it (another namespace's). */
  | { held: false; holder: string; heldClaim: string; released?: string };

export interface ClaimOptions {
  /**
   * The claimant's namespace owns this path by rule, so paths held above it by other namespaces
   * do not stand in its way. Only the exact host+path is then checked.
   */
  namespaceOwnsPath?: boolean;
}

// KEYS: claims, by-lambda; ARGV: lambda key, claim, "1" to refuse below other namespaces, then
// the claim's ancestors. Returns {holder, claim held, released}: holder is the lambda now holding
// the claim asked for, or the one whose claim (the second value) stands in its way; released is
// the claim this lambda held before and gave up (or false).
// A lambda that already holds its claim keeps it, whatever was claimed above it since: the first
// to claim a path keeps it, so nobody can take paths away by claiming "/".
const CLAIM_SCRIPT = `
local key, claim = ARGV[1], ARGV[2]
local namespace = string.match(key, '^[^/]*')
local holder = redis.call('HGET', KEYS[1], claim)
local previous = redis.call('HGET', KEYS[2], key)
local released = false
if previous and previous ~= claim then
  if redis.call('HGET', KEYS[1], previous) == key then redis.call('HDEL', KEYS[1], previous) end
  redis.call('HDEL', KEYS[2], key)
  released = previous
end
if holder and holder ~= key then return {holder, claim, released} end
if holder ~= key and ARGV[3] == '1' then
  for i = 4, #ARGV do
    local above = redis.call('HGET', KEYS[1], ARGV[i])
    if above and string.match(above, '^[^/]*') ~= namespace then return {above, ARGV[i], released} end
  end
end
redis.call('HSET', KEYS[1], claim, key)
redis.call('HSET', KEYS[2], key, claim)
return {key, claim, released}
`;

// KEYS: claims, by-lambda; ARGV: lambda key. Returns the claim released, or false.
const RELEASE_SCRIPT = `
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if not previous then return false end
if redis.call('HGET', KEYS[1], previous) == ARGV[1] then redis.call('HDEL', KEYS[1], previous) end
redis.call('HDEL', KEYS[2], ARGV[1])
return previous
`;

/** Both scripts, for checks of what they call (the Redis users' rules in libs/redis-acl). */
export const ROUTE_CLAIM_SCRIPTS = [CLAIM_SCRIPT, RELEASE_SCRIPT];

/**
 * Claims host+path for the lambda ("<namespace>/<name>"), giving up any other claim it held,
 * also when the new one is refused: a lambda that asks for a path it cannot have must not keep
 * one it no longer asks for. Refused while another lambda holds the same host+path, or, for a
 * claim the lambda does not hold yet, while a lambda of another namespace holds a path above it
 * on the same host (unless `namespaceOwnsPath`). Paths above another namespace's are allowed:
 * the longest prefix still sends that namespace its traffic.
 */
export async function claimRoute(redis: RedisConnection, key: string, claim: string, options: ClaimOptions = {}): Promise<ClaimOutcome> {
  const refuseBelowOthers = options.namespaceOwnsPath ? '0' : '1';
  const [holder, heldClaim, released] = (await redis.eval(
    CLAIM_SCRIPT,
    2,
    ROUTE_CLAIMS_KEY,
    ROUTE_CLAIMS_BY_LAMBDA_KEY,
    key,
    claim,
    refuseBelowOthers,
    ...ancestorClaims(claim),
  )) as [string, string, string | null];
  const freed = released ? { released } : {};
  return holder === key ? { held: true, ...freed } : { held: false, holder, heldClaim, ...freed };
}

/** Gives up the lambda's claim, if it has one; returns the claim released. */
export async function releaseRouteClaim(redis: RedisConnection, key: string): Promise<string | undefined> {
  const released = (await redis.eval(RELEASE_SCRIPT, 2, ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY, key)) as string | null;
  return released ?? undefined;
}
