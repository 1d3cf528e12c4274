import type { Redis } from 'ioredis';

// Route table entries are global across namespaces, so one host+path can belong to one lambda
// only. Claims decide which: the first lambda to claim a host+path holds it until it lets go
// (another path, or deleted); later claimants are refused and told who holds it. Redis runs
// each claim atomically, so every controller replica and every pass agrees on the holder.

/** host+path claim -> "<namespace>/<name>" of the lambda holding it. */
export const ROUTE_CLAIMS_KEY = 'kublambda:route-claims';
/** "<namespace>/<name>" -> the claim that lambda holds, so moving or deleting it frees the old one. */
export const ROUTE_CLAIMS_BY_LAMBDA_KEY = 'kublambda:route-claims-by-lambda';

/**
 * What two routes must not share: the host (empty for any host) and the path prefix as the
 * runner matches it, where "/shop/" and "/shop" are the same prefix.
 */
export function routeClaim(host: string | undefined, pathPrefix: string): string {
  const path = pathPrefix.length > 1 && pathPrefix.endsWith('/') ? pathPrefix.slice(0, -1) : pathPrefix;
  return `${host ?? ''}${path}`;
}

export type ClaimOutcome =
  | { held: true; released?: string }
  | { held: false; holder: string; released?: string };

// KEYS: claims, by-lambda; ARGV: lambda key, claim.
// Returns {holder, released}: holder is the lambda now holding the claim; released is the
// claim this lambda held before and gave up (or false).
const CLAIM_SCRIPT = `
local holder = redis.call('HGET', KEYS[1], ARGV[2])
local previous = redis.call('HGET', KEYS[2], ARGV[1])
local released = false
if previous and previous ~= ARGV[2] then
  if redis.call('HGET', KEYS[1], previous) == ARGV[1] then redis.call('HDEL', KEYS[1], previous) end
  redis.call('HDEL', KEYS[2], ARGV[1])
  released = previous
end
if holder and holder ~= ARGV[1] then return {holder, released} end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {ARGV[1], released}
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
 * Claims host+path for the lambda, giving up any other claim it held, also when the new one is
 * refused: a lambda that asks for a path it cannot have must not keep one it no longer asks for.
 */
export async function claimRoute(redis: Redis, key: string, claim: string): Promise<ClaimOutcome> {
  const [holder, released] = (await redis.eval(CLAIM_SCRIPT, 2, ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY, key, claim)) as [string, string | null];
  const freed = released ? { released } : {};
  return holder === key ? { held: true, ...freed } : { held: false, holder, ...freed };
}

/** Gives up the lambda's claim, if it has one; returns the claim released. */
export async function releaseRouteClaim(redis: Redis, key: string): Promise<string | undefined> {
  const released = (await redis.eval(RELEASE_SCRIPT, 2, ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY, key)) as string | null;
  return released ?? undefined;
}
