// Claims against a real Redis server on loopback, and a real three-master Redis Cluster.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_ENGINES, type RedisService } from '@kublambda/dev-servers';
import { connectRedis, type RedisConnection } from '@kublambda/redis-connection';
import { ROUTE_CLAIMS_BY_LAMBDA_KEY, ROUTE_CLAIMS_KEY, claimRoute, isClaimAtOrBelow, releaseRouteClaim } from './route-claims.ts';

describe.each(REDIS_ENGINES)('on %s', (_engine, start) => {
  let server: RedisService;
  let redis: RedisConnection;
  beforeAll(async () => {
    server = await start();
    redis = connectRedis(server.urlFor('api-controller'));
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  describe('route claims', () => {
    it('gives a path to the first claimant and refuses the next, naming the holder', async () => {
      expect(await claimRoute(redis, 'a/first', '/shared')).toEqual({ held: true });
      expect(await claimRoute(redis, 'a/first', '/shared')).toEqual({ held: true });
      expect(await claimRoute(redis, 'b/second', '/shared')).toEqual({ held: false, holder: 'a/first', heldClaim: '/shared' });
      expect(await claimRoute(redis, 'b/second', 'example.com/shared')).toEqual({ held: true });
    });

    it('frees the old path when the holder moves, and the waiting lambda can take it', async () => {
      expect(await claimRoute(redis, 'a/mover', '/old')).toEqual({ held: true });
      expect(await claimRoute(redis, 'a/waiter', '/old')).toEqual({ held: false, holder: 'a/mover', heldClaim: '/old' });
      expect(await claimRoute(redis, 'a/mover', '/new')).toEqual({ held: true, released: '/old' });
      expect(await claimRoute(redis, 'a/waiter', '/old')).toEqual({ held: true });
    });

    it('gives up a lambda\'s old path also when its new one is refused', async () => {
      expect(await claimRoute(redis, 'a/owner', '/taken')).toEqual({ held: true });
      expect(await claimRoute(redis, 'a/greedy', '/mine')).toEqual({ held: true });
      expect(await claimRoute(redis, 'a/greedy', '/taken')).toEqual({ held: false, holder: 'a/owner', heldClaim: '/taken', released: '/mine' });
      expect(await redis.hget(ROUTE_CLAIMS_KEY, '/mine')).toBeNull();
      expect(await redis.hget(ROUTE_CLAIMS_BY_LAMBDA_KEY, 'a/greedy')).toBeNull();
    });

    it('refuses a path below one held by another namespace on the same host, naming the nearest holder', async () => {
      expect(await claimRoute(redis, 'default/hello', '/hello')).toEqual({ held: true });
      expect(await claimRoute(redis, 'evil/admin', '/hello/admin')).toEqual({ held: false, holder: 'default/hello', heldClaim: '/hello' });
      expect(await claimRoute(redis, 'evil/admin', '/hello/admin/users/')).toEqual({ held: false, holder: 'default/hello', heldClaim: '/hello' });
      expect(await claimRoute(redis, 'default/users', '/hello/admin/users')).toEqual({ held: true });
      expect(await claimRoute(redis, 'evil/admin', '/hello/admin/users/x')).toEqual({ held: false, holder: 'default/users', heldClaim: '/hello/admin/users' });
      // Another host string is another table: the runner matches host rules first.
      expect(await claimRoute(redis, 'evil/admin', 'evil.example.com/hello/admin')).toEqual({ held: true });
      expect(await redis.hget(ROUTE_CLAIMS_KEY, '/hello/admin')).toBeNull();
    });

    it('lets a namespace take paths below its own, and paths above another namespace\'s', async () => {
      expect(await claimRoute(redis, 'shop/cart', '/shop')).toEqual({ held: true });
      expect(await claimRoute(redis, 'shop/checkout', '/shop/checkout')).toEqual({ held: true });
      // Above: the longest prefix still sends /shop to shop.
      expect(await claimRoute(redis, 'other/root', '/')).toEqual({ held: true });
      // Now below "/", held by other: refused for a new claim of a third namespace...
      expect(await claimRoute(redis, 'third/x', '/x')).toEqual({ held: false, holder: 'other/root', heldClaim: '/' });
      // ...but what shop already holds stays held on its next pass.
      expect(await claimRoute(redis, 'shop/checkout', '/shop/checkout')).toEqual({ held: true });
      // A namespace that owns the path by rule is not stopped by a path held above it.
      expect(await claimRoute(redis, 'third/x', '/x', { namespaceOwnsPath: true })).toEqual({ held: true });
      // The exact path stays the first holder's, whatever the rules say.
      expect(await claimRoute(redis, 'other/cart', '/shop', { namespaceOwnsPath: true })).toEqual({ held: false, holder: 'shop/cart', heldClaim: '/shop' });
      await Promise.all(['shop/cart', 'shop/checkout', 'other/root', 'third/x', 'other/cart'].map((key) => releaseRouteClaim(redis, key)));
    });

    it('lets a refused lambda claim once the path above it is given up', async () => {
      expect(await claimRoute(redis, 'a/parent', '/parent')).toEqual({ held: true });
      expect(await claimRoute(redis, 'b/child', '/parent/child')).toEqual({ held: false, holder: 'a/parent', heldClaim: '/parent' });
      expect(await releaseRouteClaim(redis, 'a/parent')).toBe('/parent');
      expect(await claimRoute(redis, 'b/child', '/parent/child')).toEqual({ held: true });
    });

    it('decides concurrent claims one at a time: one holder per path, every refusal explained by a claim held', async () => {
      // Many namespaces race for paths on one chain, each from a connection of its own.
      const chain = ['/race', '/race/a', '/race/a/b', '/race/a/b/c'];
      const claimants = Array.from({ length: 24 }, (_, i) => ({ key: `ns${i}/lambda`, claim: chain[i % chain.length]! }));
      const connections = claimants.map(() => connectRedis(server.urlFor('api-controller')));
      try {
        const outcomes = await Promise.all(claimants.map(({ key, claim }, i) => claimRoute(connections[i]!, key, claim)));
        const held = await redis.hgetall(ROUTE_CLAIMS_KEY);
        const byLambda = await redis.hgetall(ROUTE_CLAIMS_BY_LAMBDA_KEY);
        const raceClaims = Object.fromEntries(Object.entries(held).filter(([claim]) => claim.startsWith('/race')));
        // Every path of the chain asked for has exactly one holder, and the index agrees.
        claimants.forEach(({ key, claim }, i) => {
          const outcome = outcomes[i]!;
          if (outcome.held) {
            expect(raceClaims[claim]).toBe(key);
            expect(byLambda[key]).toBe(claim);
          } else {
            expect(byLambda[key]).toBeUndefined();
            // Refused by someone really holding that path or one above it, in another namespace.
            expect(raceClaims[outcome.heldClaim]).toBe(outcome.holder);
            expect(isClaimAtOrBelow(claim, outcome.heldClaim)).toBe(true);
            expect(outcome.holder.split('/')[0]).not.toBe(key.split('/')[0]);
          }
        });
        // No path was given twice.
        expect(Object.keys(raceClaims).length).toBe(outcomes.filter((o) => o.held).length);
        expect(outcomes.some((o) => o.held) && outcomes.some((o) => !o.held)).toBe(true);
      } finally {
        for (const connection of connections) connection.disconnect();
      }
    });

    it('releases on request and leaves nothing behind', async () => {
      await redis.del(ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY);
      expect(await claimRoute(redis, 'a/gone', '/gone')).toEqual({ held: true });
      expect(await releaseRouteClaim(redis, 'a/gone')).toBe('/gone');
      expect(await releaseRouteClaim(redis, 'a/gone')).toBeUndefined();
      expect(await redis.exists(ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY)).toBe(0);
    });
  });
});
