// The state store across Redis restarts and outages, against a real redis-server with its
// append-only file on. Nothing here is mocked: Redis is restarted, shut down and frozen.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { RedisConnection } from '@kublambda/redis-connection';
import { startRedis, waitUntil, type RedisServer } from '@kublambda/dev-servers';
import { connectStateRedis, createStateStore, executeStateOperation, type StateStore } from './index.ts';
import { freshNamespace, stateErrorOf } from './state.testing.ts';

const COMMAND_TIMEOUT_MS = 500;

let server: RedisServer;
let redis: RedisConnection;
let store: StateStore;

beforeAll(async () => {
  server = await startRedis({ appendOnly: true });
  redis = await connectStateRedis(server.urlFor('runner'), () => {}, COMMAND_TIMEOUT_MS);
  store = createStateStore(redis);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

/** Another client, as an operator would use: shuts Redis down or freezes its clients. */
async function withAdmin<T>(use: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis(server.adminUrl, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => {});
  try {
    return await use(admin);
  } finally {
    admin.disconnect();
  }
}

async function whenServing<T>(operation: () => Promise<T>): Promise<T> {
  return waitUntil('the state store to serve again', async () => operation().catch(() => undefined), { timeoutMs: 20_000, intervalMs: 50 });
}

describe('state store and Redis availability', () => {
  it('keeps every entry, version and expiry across a Redis restart (append-only file)', async () => {
    const table = store.table(freshNamespace(), 'orders');
    const { version } = await table.put('o1', { total: 12 });
    await table.increment('count', 3);
    await table.put('session', 'x', { ttlSeconds: 600 });
    const before = await table.list();

    await server.restart();

    expect(await whenServing(() => table.list())).toEqual(before);
    expect((await table.put('o1', { total: 13 }, { ifVersion: version })).version).toBeGreaterThan(before.entries.at(-1)!.version);
    expect(await table.increment('count')).toBe(4);
  });

  it('fails fast with StateUnavailable while Redis is down, and serves again once it is back', async () => {
    const namespace = freshNamespace();
    const table = store.table(namespace, 'orders');
    await table.put('kept', 'before the outage');
    await withAdmin((admin) => admin.call('SHUTDOWN').catch(() => undefined));
    try {
      for (const operation of [() => table.get('kept'), () => table.put('k', 1), () => table.increment('n')]) {
        const started = performance.now();
        const error = await stateErrorOf(operation());
        // Failing without waiting out the command timeout is the point: the connection is gone.
        expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS);
        expect(error.code).toBe('StateUnavailable');
        expect(error.message).toMatch(/in table "orders" of namespace ".*": the state store is unavailable \(.+\); the outcome is unknown, retry later$/);
      }
      expect(await executeStateOperation(store, ['orders'], namespace, { op: 'get', table: 'orders', key: 'kept' })).toEqual({
        ok: false,
        error: { code: 'StateUnavailable', message: expect.stringContaining('get "kept" in table "orders"') },
      });
    } finally {
      await server.restart();
    }
    expect(await whenServing(() => table.get('kept'))).toMatchObject({ value: 'before the outage' });
  });

  it('fails with StateUnavailable after the command timeout when Redis does not answer, and serves again', async () => {
    const table = store.table(freshNamespace(), 'orders');
    await table.put('k', 'v');
    // CLIENT PAUSE leaves every client's commands unanswered for a while, as a hung Redis would.
    await withAdmin((admin) => admin.call('CLIENT', 'PAUSE', String(COMMAND_TIMEOUT_MS * 4), 'ALL'));
    const error = await stateErrorOf(table.get('k'));
    expect(error.code).toBe('StateUnavailable');
    expect(error.message).toMatch('Command timed out');
    expect(await whenServing(() => table.get('k'))).toMatchObject({ value: 'v' });
  });
});
