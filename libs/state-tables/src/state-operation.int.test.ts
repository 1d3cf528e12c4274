// executeStateOperation as the runner calls it for a worker, against a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { RedisConnection } from '@kublambda/redis-connection';
import { startRedis, type RedisServer } from '@kublambda/dev-servers';
import { connectStateRedis, createStateStore, executeStateOperation, type StateOperation, type StateOutcome, type StateStore } from './index.ts';
import { freshNamespace } from './state.testing.ts';

let server: RedisServer;
let redis: RedisConnection;
/** Looks at the keys themselves, which the runner's user may not. */
let admin: Redis;
let store: StateStore;

beforeAll(async () => {
  server = await startRedis();
  redis = await connectStateRedis(server.urlFor('runner'), () => {});
  admin = new Redis(server.adminUrl);
  store = createStateStore(redis);
});
afterAll(async () => {
  redis?.disconnect();
  admin?.disconnect();
  await server?.stop();
});

/** As over the worker channel: the operation and the outcome both travel as JSON text. */
async function overChannel(namespace: string, declared: string[], operation: StateOperation | Record<string, unknown>): Promise<StateOutcome> {
  const outcome = await executeStateOperation(store, declared, namespace, JSON.parse(JSON.stringify(operation)));
  return JSON.parse(JSON.stringify(outcome)) as StateOutcome;
}

describe('executeStateOperation', () => {
  it('performs every operation with plain JSON in and out', async () => {
    const namespace = freshNamespace();
    const run = (operation: StateOperation) => overChannel(namespace, ['orders'], operation);
    await run({ op: 'put', table: 'orders', key: 'o1', value: { total: 11 } });
    const put = await run({ op: 'put', table: 'orders', key: 'o1', value: { total: 12 } });
    expect(put).toEqual({ ok: true, result: { version: expect.any(Number) } });
    const version = (put as { result: { version: number } }).result.version;
    expect(await run({ op: 'get', table: 'orders', key: 'o1' })).toEqual({ ok: true, result: { key: 'o1', value: { total: 12 }, version } });
    expect(await run({ op: 'put', table: 'orders', key: 'o1', value: 1, ifVersion: version - 1 })).toEqual({
      ok: false,
      error: { code: 'StateConflict', message: expect.stringContaining(`expected version ${version - 1}, but it is at version ${version}`) },
    });
    expect(await run({ op: 'increment', table: 'orders', key: 'count', by: 5, ttlSeconds: 60 })).toEqual({ ok: true, result: 5 });
    expect(await run({ op: 'list', table: 'orders', limit: 1 })).toEqual({
      ok: true,
      result: { entries: [{ key: 'count', value: 5, version: expect.any(Number), expiresAt: expect.any(Number) }], cursor: expect.any(String) },
    });
    expect(await run({ op: 'list', table: 'orders', prefix: 'o' })).toEqual({ ok: true, result: { entries: [{ key: 'o1', value: { total: 12 }, version }] } });
    expect(await run({ op: 'delete', table: 'orders', key: 'o1' })).toEqual({ ok: true, result: true });
    expect(await run({ op: 'get', table: 'orders', key: 'o1' })).toEqual({ ok: true, result: null });
  });

  it('refuses a table the lambda does not declare, naming the ones it does', async () => {
    const namespace = freshNamespace();
    expect(await overChannel(namespace, ['orders', 'visits'], { op: 'get', table: 'secrets', key: 'k' })).toEqual({
      ok: false,
      error: { code: 'TableNotDeclared', message: 'state table "secrets" is not declared by this lambda: it declares "orders", "visits"' },
    });
    expect(await overChannel(namespace, [], { op: 'list', table: 'orders' })).toEqual({
      ok: false,
      error: { code: 'TableNotDeclared', message: 'state table "orders" is not declared by this lambda: it declares none (spec.stateTables)' },
    });
    expect(await admin.keys(`*${namespace}*`)).toEqual([]);
  });

  it('keeps the tables of two namespaces apart even when both lambdas declare the same name', async () => {
    const [first, second] = [freshNamespace(), freshNamespace()];
    await overChannel(first, ['shared'], { op: 'put', table: 'shared', key: 'k', value: 'first' });
    expect(await overChannel(second, ['shared'], { op: 'get', table: 'shared', key: 'k' })).toEqual({ ok: true, result: null });
  });

  it.each([
    ['not an object', 'get', 'InvalidArgument', 'a state operation must be an object'],
    ['an unknown operation', { op: 'flush', table: 't' }, 'InvalidArgument', 'unknown state operation "flush": one of get, put, delete, increment, list'],
    ['no table name', { op: 'get', key: 'k' }, 'InvalidArgument', 'get: the table name must be a string'],
    ['unknown fields', { op: 'get', table: 't', key: 'k', ttlSeconds: 1, raw: true }, 'InvalidArgument', 'get: unknown fields ttlSeconds, raw'],
    ['no key', { op: 'put', table: 't', value: 1 }, 'InvalidKey', 'put: a key is required'],
    ['a key that is not a string', { op: 'get', table: 't', key: 7 }, 'InvalidKey', 'a key must be a string, not number'],
    ['a limit that is not a number', { op: 'list', table: 't', limit: '10' }, 'InvalidArgument', 'list limit must be a whole number from 1 to 1000, not "10"'],
  ])('refuses %s with a clear error', async (_, operation, code, message) => {
    expect(await overChannel(freshNamespace(), ['t'], operation as Record<string, unknown>)).toEqual({ ok: false, error: { code, message } });
  });
});
