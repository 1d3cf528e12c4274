// Against a real redis-server on loopback, and a real three-master Redis Cluster.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_ENGINES, waitUntil, type RedisService } from '@kublambda/dev-servers';
import { createLogger } from '@kublambda/logging';
import { connectRedis, everyNode, type RedisConnection } from '@kublambda/redis-connection';
import { publishRoute, removeRoute, ROUTES_KEY, ROUTES_VERSION_KEY, type RouteRecord } from '@kublambda/route-table';
import { followRoutes, type RouteFollower } from './follow-routes.ts';
import { RouteMatcher } from './route-matcher.ts';
import { testRoute } from './route.testing.ts';

describe.each(REDIS_ENGINES)('followRoutes on %s', (engine, start) => {
  let redis: RedisService;
  // Routes are published as api-controller does it, and followed with the runner's user.
  let controller: RedisConnection;
  let admin: RedisConnection;
  const followers: RouteFollower[] = [];

  beforeAll(async () => {
    redis = await start();
    controller = connectRedis(redis.urlFor('api-controller'));
    admin = connectRedis(redis.adminUrl);
  }, 60_000);
  afterEach(() => {
    for (const follower of followers.splice(0)) follower.stop();
  });
  afterAll(async () => {
    controller?.disconnect();
    admin?.disconnect();
    await redis?.stop();
  });

  /** Each test's routes have names of their own, so tests do not see each other's. */
  const route = (test: string, name: string, pathPrefix: string, generation = 1): RouteRecord => testRoute(`${test}-${name}`, `/${test}${pathPrefix}`, { generation });

  async function follow() {
    const matcher = new RouteMatcher();
    const published: string[] = [];
    const removed: string[] = [];
    const follower = followRoutes(redis.urlFor('runner'), matcher, createLogger('test', 'silent'), {
      onPublished: (announced) => published.push(`${announced.key}@${announced.generation}`),
      onRemoved: (key) => removed.push(key),
    });
    followers.push(follower);
    await follower.loaded;
    return { matcher, published, removed };
  }

  /** Writes a record and counts the change as a lost announcement would leave it: no message. */
  async function writeUnannounced(record: RouteRecord): Promise<void> {
    await admin.multi().hset(ROUTES_KEY, record.key, JSON.stringify(record)).incr(ROUTES_VERSION_KEY).exec();
  }

  it('loads the routes that exist at start', async () => {
    await publishRoute(controller, route('start', 'existing', '/existing'));
    const { matcher, published } = await follow();
    expect(matcher.match('h', '/start/existing/x')?.route.name).toBe('start-existing');
    expect(published).toEqual([]);
  });

  it('applies published and removed routes as they are announced', async () => {
    const { matcher, published, removed } = await follow();
    await publishRoute(controller, route('announced', 'fresh', '/fresh'));
    await waitUntil('the new route', () => matcher.match('h', '/announced/fresh')?.route.name === 'announced-fresh', { intervalMs: 5, timeoutMs: 10_000 });
    await publishRoute(controller, route('announced', 'fresh', '/moved', 2));
    await waitUntil('the moved route', () => matcher.match('h', '/announced/moved')?.route.generation === 2, { intervalMs: 5, timeoutMs: 10_000 });
    expect(matcher.match('h', '/announced/fresh')).toBeUndefined();
    await removeRoute(controller, 'ns/announced-fresh');
    await waitUntil('the route to go', () => matcher.get('ns/announced-fresh') === undefined, { intervalMs: 5, timeoutMs: 10_000 });
    expect(removed).toEqual(['ns/announced-fresh']);
    expect(published).toEqual(['ns/announced-fresh@1', 'ns/announced-fresh@2']);
  });

  it('notices a change whose announcement it never heard, by the route table version', async () => {
    const { matcher } = await follow();
    await writeUnannounced(route('missed', 'quiet', '/quiet'));
    await waitUntil('the unannounced route', () => matcher.get('ns/missed-quiet') !== undefined, { timeoutMs: 10_000 });
    // And the next announcement, one version further, is applied as usual.
    await publishRoute(controller, route('missed', 'next', '/next'));
    await waitUntil('the next route', () => matcher.get('ns/missed-next') !== undefined, { timeoutMs: 10_000 });
  });

  it('loads everything again when Redis is behind what it heard (writes lost in a failover)', async () => {
    await publishRoute(controller, route('behind', 'kept', '/kept'));
    const { matcher, removed } = await follow();
    await publishRoute(controller, route('behind', 'lost', '/lost'));
    await waitUntil('the route', () => matcher.get('ns/behind-lost') !== undefined, { timeoutMs: 10_000 });
    // As a replica promoted before it had the last write would leave it: record and count gone.
    await admin.multi().hdel(ROUTES_KEY, 'ns/behind-lost').decr(ROUTES_VERSION_KEY).exec();
    await waitUntil('the lost route to go', () => matcher.get('ns/behind-lost') === undefined, { timeoutMs: 10_000 });
    expect(removed).toEqual(['ns/behind-lost']);
    expect(matcher.get('ns/behind-kept')).toBeDefined();
  });

  if (engine === 'a single Redis') {
    it('reloads everything after its connection drops, catching changes it was not told about', async () => {
      await publishRoute(controller, route('dropped', 'existing', '/existing'));
      const { matcher, removed } = await follow();
      // Written without an announcement or a version, as an old controller would have.
      await admin.hset(ROUTES_KEY, 'ns/dropped-unannounced', JSON.stringify(route('dropped', 'unannounced', '/quiet')));
      await admin.hdel(ROUTES_KEY, 'ns/dropped-existing');
      expect(matcher.get('ns/dropped-unannounced')).toBeUndefined();
      await Promise.all(everyNode(admin).map((node) => node.call('CLIENT', 'KILL', 'TYPE', 'pubsub')));
      await waitUntil('the reload', () => matcher.get('ns/dropped-unannounced') !== undefined && matcher.get('ns/dropped-existing') === undefined, { timeoutMs: 10_000 });
      expect(removed).toEqual(['ns/dropped-existing']);
      // And announcements flow again on the new connection.
      await publishRoute(controller, route('dropped', 'after', '/after'));
      await waitUntil('an announcement after reconnecting', () => matcher.get('ns/dropped-after') !== undefined, { timeoutMs: 10_000 });
    });
  }
});
