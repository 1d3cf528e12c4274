// Claims against a real Redis server on loopback.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '@kublambda/dev-servers';
import { ROUTE_CLAIMS_BY_LAMBDA_KEY, ROUTE_CLAIMS_KEY, claimRoute, releaseRouteClaim } from './route-claims.ts';

let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.urlFor('api-controller'));
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe('route claims', () => {
  it('gives a path to the first claimant and refuses the next, naming the holder', async () => {
    expect(await claimRoute(redis, 'a/first', '/shared')).toEqual({ held: true });
    expect(await claimRoute(redis, 'a/first', '/shared')).toEqual({ held: true });
    expect(await claimRoute(redis, 'b/second', '/shared')).toEqual({ held: false, holder: 'a/first' });
    expect(await claimRoute(redis, 'b/second', 'example.com/shared')).toEqual({ held: true });
  });

  it('frees the old path when the holder moves, and the waiting lambda can take it', async () => {
    expect(await claimRoute(redis, 'a/mover', '/old')).toEqual({ held: true });
    expect(await claimRoute(redis, 'a/waiter', '/old')).toEqual({ held: false, holder: 'a/mover' });
    expect(await claimRoute(redis, 'a/mover', '/new')).toEqual({ held: true, released: '/old' });
    expect(await claimRoute(redis, 'a/waiter', '/old')).toEqual({ held: true });
  });

  it('gives up a lambda\'s old path also when its new one is refused', async () => {
    expect(await claimRoute(redis, 'a/owner', '/taken')).toEqual({ held: true });
    expect(await claimRoute(redis, 'a/greedy', '/mine')).toEqual({ held: true });
    expect(await claimRoute(redis, 'a/greedy', '/taken')).toEqual({ held: false, holder: 'a/owner', released: '/mine' });
    expect(await redis.hget(ROUTE_CLAIMS_KEY, '/mine')).toBeNull();
    expect(await redis.hget(ROUTE_CLAIMS_BY_LAMBDA_KEY, 'a/greedy')).toBeNull();
  });

  it('releases on request and leaves nothing behind', async () => {
    await redis.del(ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY);
    expect(await claimRoute(redis, 'a/gone', '/gone')).toEqual({ held: true });
    expect(await releaseRouteClaim(redis, 'a/gone')).toBe('/gone');
    expect(await releaseRouteClaim(redis, 'a/gone')).toBeUndefined();
    expect(await redis.exists(ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY)).toBe(0);
  });
});
