// The users' rules as a real redis-server (started by libs/dev-servers) enforces them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX } from '@kublambda/build-queue';
import { rawRedisReplies, startRedis, type RedisServer } from '@kublambda/dev-servers';
import { ROUTE_CHANGES_CHANNEL, ROUTE_CLAIMS_KEY, ROUTES_KEY } from '@kublambda/route-table';
import { createReadOnlyStateStore, createStateStore, tableKeys } from '@kublambda/state-tables';
import type { ServiceUser } from './acl-rules.ts';

let server: RedisServer;
let admin: Redis;
const connections: Redis[] = [];
const queueKey = (suffix: string) => `${BUILD_QUEUE_PREFIX}:${BUILD_QUEUE}:${suffix}`;
const orders = tableKeys('shop', 'orders');

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.adminUrl);
  await admin.hset(ROUTES_KEY, 'shop/cart', '{"key":"shop/cart"}');
  await admin.hset(ROUTE_CLAIMS_KEY, '/cart', 'shop/cart');
  await admin.lpush(queueKey('wait'), 'shop/cart/abc');
});
afterAll(async () => {
  for (const connection of [admin, ...connections]) connection?.disconnect();
  await server?.stop();
});

function connectAs(user: ServiceUser): Redis {
  const connection = new Redis(server.urlFor(user), { maxRetriesPerRequest: 0 });
  connections.push(connection);
  return connection;
}

/** The error Redis answers, or "ok" when it carries the command out. */
async function outcome(command: Promise<unknown>): Promise<string> {
  return command.then(
    () => 'ok',
    (error: Error) => error.message.split(' ')[0]!,
  );
}

describe('the platform Redis', () => {
  it('answers a connection without credentials with NOAUTH only', async () => {
    const replies = await rawRedisReplies(server.port, ['PING', 'KEYS *', `HGETALL ${ROUTES_KEY}`, `HSET ${ROUTES_KEY} evil x`]);
    expect(replies).toEqual(Array(4).fill('-NOAUTH Authentication required.'));
    expect(await admin.hkeys(ROUTES_KEY)).toEqual(['shop/cart']);
  });

  it('refuses the default user even with a guessed password', async () => {
    expect(await rawRedisReplies(server.port, ['AUTH default ""', 'AUTH nopass'])).toEqual([
      '-WRONGPASS invalid username-password pair or user is disabled.',
      '-WRONGPASS invalid username-password pair or user is disabled.',
    ]);
  });

  it('lets the runner read routes, hear announcements and use state tables, and nothing else', async () => {
    const runner = connectAs('runner');
    expect(await runner.hgetall(ROUTES_KEY)).toEqual({ 'shop/cart': '{"key":"shop/cart"}' });
    const subscriber = connectAs('runner');
    await subscriber.subscribe(ROUTE_CHANGES_CHANNEL);
    const announced = once(subscriber, 'message');
    await admin.publish(ROUTE_CHANGES_CHANNEL, 'hello');
    expect(await announced).toEqual([ROUTE_CHANGES_CHANNEL, 'hello']);
    await createStateStore(runner).table('shop', 'orders').put('order/1', { total: 10 });
    expect(await outcome(runner.hset(ROUTES_KEY, 'shop/cart', '{"evil":true}'))).toBe('NOPERM');
    expect(await outcome(runner.hdel(ROUTES_KEY, 'shop/cart'))).toBe('NOPERM');
    expect(await outcome(runner.del(ROUTES_KEY))).toBe('NOPERM');
    // A script runs with its caller's rules: it cannot write routes either.
    expect(await outcome(runner.eval(`return redis.call('HSET', KEYS[1], 'x', 'y')`, 1, ROUTES_KEY))).toBe('NOPERM');
    await expect(runner.eval(`return redis.call('HSET', '${ROUTES_KEY}', 'x', 'y')`, 0)).rejects.toThrow("can't access at least one of the keys");
    expect(await outcome(runner.lrange(queueKey('wait'), '0', '-1'))).toBe('NOPERM');
    expect(await outcome(runner.hgetall(queueKey('shop/cart/abc')))).toBe('NOPERM');
    expect(await outcome(runner.hgetall(ROUTE_CLAIMS_KEY))).toBe('NOPERM');
    expect(await outcome(runner.keys('*'))).toBe('NOPERM');
    expect(await outcome(runner.scan(0))).toBe('NOPERM');
    expect(await outcome(runner.publish(ROUTE_CHANGES_CHANNEL, '{"key":"shop/cart","action":"delete"}'))).toBe('NOPERM');
    expect(await outcome(runner.flushall())).toBe('NOPERM');
    expect(await outcome(runner.config('GET', 'requirepass'))).toBe('NOPERM');
    expect(await admin.hget(ROUTES_KEY, 'shop/cart')).toBe('{"key":"shop/cart"}');
  });

  it("keeps the builder to the build queue: no routes, claims or state tables", async () => {
    const builder = connectAs('builder');
    expect(await builder.lrange(queueKey('wait'), 0, -1)).toEqual(['shop/cart/abc']);
    expect(await outcome(builder.hgetall(ROUTES_KEY))).toBe('NOPERM');
    expect(await outcome(builder.hget(ROUTE_CLAIMS_KEY, '/cart'))).toBe('NOPERM');
    expect(await outcome(builder.hmget(`${orders.entryPrefix}order/1`, 'v'))).toBe('NOPERM');
    expect(await outcome(builder.zrange(orders.index, '0', '-1'))).toBe('NOPERM');
    expect(await outcome(builder.subscribe(ROUTE_CHANGES_CHANNEL))).toBe('NOPERM');
    expect(await outcome(builder.keys('*'))).toBe('NOPERM');
  });

  it('lets api-controller publish routes and requests builds, but not list every key', async () => {
    const controller = connectAs('api-controller');
    expect(await outcome(controller.multi().hset(ROUTES_KEY, 'shop/new', '{}').publish(ROUTE_CHANGES_CHANNEL, '{}').exec())).toBe('ok');
    expect(await controller.hget(ROUTE_CLAIMS_KEY, '/cart')).toBe('shop/cart');
    expect(await controller.llen(queueKey('wait'))).toBe(1);
    expect(await outcome(controller.keys('*'))).toBe('NOPERM');
    expect(await outcome(controller.get('some-other-key'))).toBe('NOPERM');
  });

  it('lists a table read-only past an expired entry, leaving the index to the next write', async () => {
    const runner = createStateStore(connectAs('runner')).table('shop', 'carts');
    await runner.put('gone', 1, { ttlSeconds: 1 });
    await runner.put('kept', 2);
    const carts = tableKeys('shop', 'carts');
    // Expires the entry now (an expiry time in the past) rather than waiting a second.
    await admin.pexpireat(`${carts.entryPrefix}gone`, 1);
    // As api-controller's admin API reads it for the CLI.
    const page = await createReadOnlyStateStore(connectAs('api-controller')).table('shop', 'carts').list();
    expect(page.entries.map((entry) => entry.key)).toEqual(['kept']);
    expect(await admin.zrange(carts.index, '0', '-1')).toEqual(['gone', 'kept']);
  });
});
