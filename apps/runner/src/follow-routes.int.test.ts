// Against a real redis-server on loopback.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startRedis, waitUntil, type RedisServer } from '@kublambda/dev-servers';
import { createLogger } from '@kublambda/logging';
import { publishRoute, removeRoute, ROUTES_KEY } from '@kublambda/route-table';
import { followRoutes, type RouteFollower } from './follow-routes.ts';
import { RouteMatcher } from './route-matcher.ts';
import { testRoute } from './route.testing.ts';

const route = (name: string, pathPrefix: string, generation = 1) => testRoute(name, pathPrefix, { generation });

let redis: RedisServer;
let client: Redis;
let follower: RouteFollower;
const matcher = new RouteMatcher();
const removed: string[] = [];
const published: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  // Routes are published as api-controller does it, and followed with the runner's user.
  client = new Redis(redis.urlFor('api-controller'));
  await publishRoute(client, route('existing', '/existing'));
  follower = followRoutes(redis.urlFor('runner'), matcher, createLogger('test', 'silent'), {
    onPublished: (announced) => published.push(`${announced.key}@${announced.generation}`),
    onRemoved: (key) => removed.push(key),
  });
  await follower.loaded;
});
afterAll(async () => {
  follower?.stop();
  client?.disconnect();
  await redis?.stop();
});

describe('followRoutes', () => {
  it('loads the routes that exist at start', () => {
    expect(matcher.match('h', '/existing/x')?.route.name).toBe('existing');
  });

  it('applies published and removed routes as they are announced', async () => {
    await publishRoute(client, route('fresh', '/fresh'));
    await waitUntil('the new route', () => matcher.match('h', '/fresh')?.route.name === 'fresh', { intervalMs: 5, timeoutMs: 5_000 });
    await publishRoute(client, route('fresh', '/moved', 2));
    await waitUntil('the moved route', () => matcher.match('h', '/moved')?.route.generation === 2, { intervalMs: 5, timeoutMs: 5_000 });
    expect(matcher.match('h', '/fresh')).toBeUndefined();
    await removeRoute(client, 'ns/fresh');
    await waitUntil('the route to go', () => matcher.get('ns/fresh') === undefined, { intervalMs: 5, timeoutMs: 5_000 });
    expect(removed).toEqual(['ns/fresh']);
    // The route loaded at start was not announced.
    expect(published).toEqual(['ns/fresh@1', 'ns/fresh@2']);
  });

  it('reloads everything after its connection drops, catching changes it was not told about', async () => {
    // Written without an announcement, as if published while the runner was disconnected.
    await client.hset(ROUTES_KEY, 'ns/unannounced', JSON.stringify(route('unannounced', '/quiet')));
    await client.hdel(ROUTES_KEY, 'ns/existing');
    expect(matcher.get('ns/unannounced')).toBeUndefined();
    const admin = new Redis(redis.adminUrl);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    } finally {
      admin.disconnect();
    }
    await waitUntil('the reload', () => matcher.get('ns/unannounced') !== undefined && matcher.get('ns/existing') === undefined, { timeoutMs: 10_000 });
    expect(removed).toEqual(['ns/fresh', 'ns/existing']);
    // And announcements flow again on the new connection.
    await publishRoute(client, route('after', '/after'));
    await waitUntil('an announcement after reconnecting', () => matcher.get('ns/after') !== undefined, { timeoutMs: 5_000 });
  });
});
