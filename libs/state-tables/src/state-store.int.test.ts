// Against a real redis-server on loopback, and a real three-master Redis Cluster.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connectRedis, everyMaster, type RedisConnection } from '@kublambda/redis-connection';
import { REDIS_ENGINES, waitUntil, type RedisService } from '@kublambda/dev-servers';
import type { StateEntry } from '@kublambda/lambda-api';
import { createStateStore, deleteTables, encodeCursor, STATE_KEY_PREFIX, STATE_LIMITS, connectStateRedis, tableKeys, type StateStore } from './index.ts';
import { freshNamespace, stateErrorOf } from './state.testing.ts';

/** The tests count exact outcomes, not latency: a loaded machine may take more than the runner's 2 s to answer. */
const TEST_COMMAND_TIMEOUT_MS = 30_000;

describe.each(REDIS_ENGINES)('state tables on %s', (_engine, start) => {
  let server: RedisService;
  let redis: RedisConnection;
  /** Looks at the keys themselves, which the runner's user may not (KEYS, ZCARD, PTTL ...). */
  let admin: RedisConnection;
  let store: StateStore;
  const connections: RedisConnection[] = [];

  beforeAll(async () => {
    server = await start();
    redis = await connectStateRedis(server.urlFor('runner'), () => {}, TEST_COMMAND_TIMEOUT_MS);
    admin = connectRedis(server.adminUrl);
    store = createStateStore(redis);
  }, 60_000);
  afterAll(async () => {
    for (const connection of [redis, admin, ...connections]) connection?.disconnect();
    await server?.stop();
  });

  /** `count` stores, each on a connection of its own, as separate runner processes would be. */
  async function storesOnOwnConnections(count: number): Promise<StateStore[]> {
    return Promise.all(
      Array.from({ length: count }, async () => {
        const connection = await connectStateRedis(server.urlFor('runner'), () => {}, TEST_COMMAND_TIMEOUT_MS);
        connections.push(connection);
        return createStateStore(connection);
      }),
    );
  }

  /** Every key Redis holds for a table, by the documented layout. */
  async function redisKeysOf(namespace: string, table: string): Promise<string[]> {
    // On a cluster, KEYS answers for one node: ask every master.
    return (await Promise.all(everyMaster(admin).map((node) => node.keys(`${STATE_KEY_PREFIX}{${namespace}/${table}}:*`)))).flat();
  }

  async function listAll(namespace: string, table: string, options: { prefix?: string; limit: number }) {
    const pages: StateEntry[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.table(namespace, table).list({ ...options, cursor });
      pages.push(page.entries);
      cursor = page.cursor;
    } while (cursor);
    return pages;
  }

  describe('get, put, delete', () => {
    it('round-trips JSON values of every kind, with versions that grow on each write', async () => {
      const table = store.table(freshNamespace(), 'orders');
      const values = [{ id: 7, lines: [{ sku: 'a', qty: 2 }], note: null }, [1, 'two', false], 'text ✓', 42.5, true, null];
      let previous = 0;
      for (const [index, value] of values.entries()) {
        const key = `order/${index}/ünïcode`;
        const { version } = await table.put(key, value);
        expect(version).toBeGreaterThan(previous);
        previous = version;
        expect(await table.get(key)).toEqual({ key, value, version });
      }
      const { version } = await table.put('order/0/ünïcode', 'replaced');
      expect(await table.get('order/0/ünïcode')).toEqual({ key: 'order/0/ünïcode', value: 'replaced', version });
    });

    it('deletes, saying whether there was an entry', async () => {
      const table = store.table(freshNamespace(), 'orders');
      await table.put('k', 1);
      expect(await table.delete('k')).toBe(true);
      expect(await table.get('k')).toBeNull();
      expect(await table.delete('k')).toBe(false);
      expect((await table.list()).entries).toEqual([]);
    });

    it('gives a re-created key a version above any it had before (no ABA for compare-and-set)', async () => {
      const table = store.table(freshNamespace(), 'orders');
      const first = await table.put('k', 'first');
      await table.delete('k');
      const second = await table.put('k', 'second');
      expect(second.version).toBeGreaterThan(first.version);
      expect((await stateErrorOf(table.put('k', 'stale', { ifVersion: first.version }))).code).toBe('StateConflict');
    });
  });

  describe('compare-and-set', () => {
    it('writes only at the expected version, and refuses a stale one with a clear conflict', async () => {
      const table = store.table(freshNamespace(), 'orders');
      const { version } = await table.put('k', 'a');
      const next = await table.put('k', 'b', { ifVersion: version });
      const conflict = await stateErrorOf(table.put('k', 'c', { ifVersion: version }));
      expect(conflict.code).toBe('StateConflict');
      expect(conflict.message).toMatch(`put "k" in table "orders" of namespace`);
      expect(conflict.message).toMatch(`expected version ${version}, but it is at version ${next.version}`);
      expect(await table.get('k')).toMatchObject({ value: 'b', version: next.version });
    });

    it('treats ifVersion 0 as "only if there is no entry"', async () => {
      const table = store.table(freshNamespace(), 'orders');
      const created = await table.put('k', 'first', { ifVersion: 0 });
      const conflict = await stateErrorOf(table.put('k', 'second', { ifVersion: 0 }));
      expect(conflict).toMatchObject({ code: 'StateConflict' });
      expect(conflict.message).toMatch(`expected version 0 (no entry), but it is at version ${created.version}`);
      expect(await table.get('k')).toMatchObject({ value: 'first' });
    });

    it('deletes only at the expected version when asked to', async () => {
      const table = store.table(freshNamespace(), 'orders');
      const { version } = await table.put('k', 'a');
      expect((await stateErrorOf(table.delete('k', { ifVersion: version + 1 }))).code).toBe('StateConflict');
      expect(await table.get('k')).not.toBeNull();
      expect(await table.delete('k', { ifVersion: version })).toBe(true);
    });

    it('lets exactly one of 100 concurrent writers win each round; the rest get StateConflict', async () => {
      const namespace = freshNamespace();
      const stores = await storesOnOwnConnections(50);
      const writers = Array.from({ length: 100 }, (_, writer) => ({ writer, table: stores[writer % stores.length]!.table(namespace, 'leader') }));
      await store.table(namespace, 'leader').put('holder', { writer: -1 });
      for (let round = 0; round < 5; round++) {
        const { version } = (await store.table(namespace, 'leader').get('holder'))!;
        const outcomes = await Promise.allSettled(writers.map(({ writer, table }) => table.put('holder', { writer, round }, { ifVersion: version })));
        const winners = outcomes.flatMap((outcome, writer) => (outcome.status === 'fulfilled' ? [writer] : []));
        const conflicts = outcomes.filter((outcome) => outcome.status === 'rejected' && (outcome.reason as { code?: string }).code === 'StateConflict');
        expect(winners).toHaveLength(1);
        expect(conflicts).toHaveLength(99);
        expect((await store.table(namespace, 'leader').get('holder'))!.value).toEqual({ writer: winners[0], round });
      }
    });
  });

  describe('increment', () => {
    it('starts a missing key at 0, adds 1 by default and any finite number when asked', async () => {
      const table = store.table(freshNamespace(), 'counters');
      expect(await table.increment('hits')).toBe(1);
      expect(await table.increment('hits', 41)).toBe(42);
      expect(await table.increment('hits', -2)).toBe(40);
      expect(await table.increment('ratio', 0.1)).toBe(0.1);
      expect(await table.increment('ratio', 0.2)).toBe(0.1 + 0.2);
      expect(await table.get('hits')).toMatchObject({ value: 40 });
      await table.put('big', Number.MAX_SAFE_INTEGER - 1);
      expect(await table.increment('big')).toBe(Number.MAX_SAFE_INTEGER);
    });

    it('refuses a value that is not a number, naming it', async () => {
      const table = store.table(freshNamespace(), 'counters');
      await table.put('name', 'seven');
      const error = await stateErrorOf(table.increment('name', 1));
      expect(error.code).toBe('NotANumber');
      expect(error.message).toMatch(/increment "name" in table "counters" .*: its value is not a number: "seven"/);
      await table.put('max', Number.MAX_VALUE);
      expect((await stateErrorOf(table.increment('max', Number.MAX_VALUE))).code).toBe('NotANumber');
      expect((await stateErrorOf(table.increment('max', Number.NaN))).code).toBe('InvalidArgument');
    });

    it('counts exactly 1,000 from 50 parallel connections', async () => {
      const namespace = freshNamespace();
      const stores = await storesOnOwnConnections(50);
      const results = await Promise.all(
        stores.map(async (own) => {
          const table = own.table(namespace, 'counters');
          return Promise.all(Array.from({ length: 20 }, () => table.increment('total', 1)));
        }),
      );
      expect(await store.table(namespace, 'counters').get('total')).toMatchObject({ value: 1000 });
      // Every increment saw a distinct count: none was lost or applied twice.
      expect(new Set(results.flat()).size).toBe(1000);
    });
  });

  describe('expiry', () => {
    it('expires an entry after its TTL, reports when, and drops it from lists and the index', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'sessions');
      const before = Date.now();
      // Long enough that a loaded machine still reads it before it goes.
      await table.put('short', 'soon gone', { ttlSeconds: 2 });
      await table.put('long', 'stays');
      const entry = await table.get('short');
      expect(entry?.expiresAt).toBeGreaterThanOrEqual(before + 2000 - 50);
      expect(entry?.expiresAt).toBeLessThanOrEqual(Date.now() + 2000 + 50);
      await waitUntil('the entry to expire', async () => (await table.get('short')) === null, { intervalMs: 50, timeoutMs: 10_000 });
      expect((await table.list()).entries.map((e) => e.key)).toEqual(['long']);
      expect(await admin.zrange(tableKeys(namespace, 'sessions').index, '0', '-1')).toEqual(['long']);
      expect(await admin.zcard(tableKeys(namespace, 'sessions').expiries)).toBe(0);
    });

    it('removes expired keys from the index on later writes, so a table of short-lived keys does not grow', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'sessions');
      await Promise.all(Array.from({ length: 50 }, (_, i) => table.put(`s${i}`, i, { ttlSeconds: 0.2 })));
      await waitUntil('the entries to expire', async () => (await table.get('s49')) === null, { intervalMs: 50, timeoutMs: 10_000 });
      await table.put('other', 1);
      expect(await admin.zrange(tableKeys(namespace, 'sessions').index, '0', '-1')).toEqual(['other']);
    });

    it('removes a TTL when the entry is written again without one', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'sessions');
      await table.put('k', 1, { ttlSeconds: 60 });
      await table.put('k', 2);
      expect(await table.get('k')).not.toHaveProperty('expiresAt');
      expect(await admin.pttl(`${tableKeys(namespace, 'sessions').entryPrefix}k`)).toBe(-1);
      expect(await admin.zcard(tableKeys(namespace, 'sessions').expiries)).toBe(0);
    });

    it('increment keeps the expiry of an existing entry; ttlSeconds applies only when it creates one', async () => {
      const table = store.table(freshNamespace(), 'rate');
      await table.increment('window', 1, { ttlSeconds: 60 });
      const created = (await table.get('window'))!.expiresAt!;
      await table.increment('window', 1, { ttlSeconds: 3600 });
      expect(await table.get('window')).toMatchObject({ value: 2, expiresAt: created });
      await table.put('plain', 5);
      await table.increment('plain', 1, { ttlSeconds: 60 });
      expect(await table.get('plain')).toEqual(expect.not.objectContaining({ expiresAt: expect.anything() }));
    });

    it('lists a counter that increment made again after its earlier entry expired', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'rate');
      await table.put('window', 1, { ttlSeconds: 0.2 });
      // Expired in Redis, but no write has pruned it from the table's expiry list yet.
      await waitUntil('the entry to expire', async () => (await admin.exists(`${tableKeys(namespace, 'rate').entryPrefix}window`)) === 0, { intervalMs: 50, timeoutMs: 10_000 });
      expect(await table.increment('window')).toBe(1);
      expect((await table.list()).entries).toEqual([{ key: 'window', value: 1, version: expect.any(Number) }]);
      expect(await admin.zrange(tableKeys(namespace, 'rate').index, '0', '-1')).toEqual(['window']);
    });
  });

  describe('list', () => {
    it('pages through keys in order with a cursor, with and without a prefix', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'catalog');
      const keys = [...Array.from({ length: 23 }, (_, i) => `item/${String(i).padStart(2, '0')}`), 'itemz', 'a', 'b', 'z', 'item', 'é'];
      await Promise.all(keys.map((key, i) => table.put(key, { i })));
      const byteOrder = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

      const pages = await listAll(namespace, 'catalog', { limit: 7 });
      expect(pages.map((page) => page.length)).toEqual([7, 7, 7, 7, 1]);
      expect(pages.flat().map((entry) => entry.key)).toEqual(byteOrder);
      expect(pages.flat().find((entry) => entry.key === 'a')).toMatchObject({ value: { i: keys.indexOf('a') } });

      const prefixed = await listAll(namespace, 'catalog', { prefix: 'item/', limit: 10 });
      expect(prefixed.map((page) => page.length)).toEqual([10, 10, 3]);
      expect(prefixed.flat().map((entry) => entry.key)).toEqual(byteOrder.filter((key) => key.startsWith('item/')));
    });

    it('has no cursor when the last page is exactly full', async () => {
      const table = store.table(freshNamespace(), 'catalog');
      await Promise.all(['a', 'b', 'c', 'd'].map((key) => table.put(key, key)));
      const first = await table.list({ limit: 2 });
      expect(first.cursor).toBeDefined();
      const second = await table.list({ limit: 2, cursor: first.cursor });
      expect(second.entries.map((entry) => entry.key)).toEqual(['c', 'd']);
      expect(second).not.toHaveProperty('cursor');
    });

    it('never strays outside the prefix with a cursor from elsewhere', async () => {
      const namespace = freshNamespace();
      const table = store.table(namespace, 'catalog');
      await Promise.all(['a1', 'a2', 'b1', 'b2', 'c1'].map((key) => table.put(key, key)));
      const fromA = await table.list({ limit: 1 });
      expect((await table.list({ prefix: 'b', cursor: fromA.cursor })).entries.map((entry) => entry.key)).toEqual(['b1', 'b2']);
      expect(await table.list({ prefix: 'b', cursor: encodeCursor('c1') })).toEqual({ entries: [] });
    });

    it('refuses a limit out of range and a cursor it did not make', async () => {
      const table = store.table(freshNamespace(), 'catalog');
      expect(await stateErrorOf(table.list({ limit: 0 }))).toMatchObject({ code: 'InvalidArgument', message: 'list limit must be a whole number from 1 to 1000, not 0' });
      expect(await stateErrorOf(table.list({ limit: STATE_LIMITS.maxListLimit + 1 }))).toMatchObject({ code: 'InvalidArgument' });
      expect(await stateErrorOf(table.list({ cursor: 'not a cursor!' }))).toMatchObject({ code: 'InvalidArgument', message: 'the list cursor is not one returned by list' });
    });
  });

  describe('limits', () => {
    it('takes a key of exactly 1 KiB and refuses a longer one, stating both sizes', async () => {
      const table = store.table(freshNamespace(), 'limits');
      await table.put('k'.repeat(1024), 'fits');
      const error = await stateErrorOf(table.put('é'.repeat(513), 'too long'));
      expect(error).toMatchObject({ code: 'InvalidKey', message: 'key is 1026 bytes; the limit is 1024 bytes (UTF-8)' });
      expect((await stateErrorOf(table.get(''))).code).toBe('InvalidKey');
      expect((await stateErrorOf(table.get('\uD800'))).code).toBe('InvalidKey');
    });

    it('takes a value of exactly 256 KiB as JSON and refuses a larger one, stating both sizes', async () => {
      const table = store.table(freshNamespace(), 'limits');
      const fits = 'x'.repeat(STATE_LIMITS.maxValueBytes - 2); // the quotes make it exactly the limit
      await table.put('fits', fits);
      expect((await table.get('fits'))?.value).toBe(fits);
      const error = await stateErrorOf(table.put('big', `${fits}x`));
      expect(error).toMatchObject({ code: 'ValueTooLarge', message: 'the value of "big" is 262145 bytes as JSON; the limit is 262144 bytes (256 KiB)' });
      expect(await table.get('big')).toBeNull();
    });

    it('refuses values JSON cannot hold and options out of range', async () => {
      const table = store.table(freshNamespace(), 'limits');
      expect(await stateErrorOf(table.put('k', undefined as never))).toMatchObject({ code: 'InvalidArgument', message: 'the value of "k" is undefined, which JSON cannot represent' });
      expect((await stateErrorOf(table.put('k', 10n as never))).code).toBe('InvalidArgument');
      expect((await stateErrorOf(table.put('k', 1, { ttlSeconds: 0 }))).code).toBe('InvalidArgument');
      expect((await stateErrorOf(table.put('k', 1, { ifVersion: -1 }))).code).toBe('InvalidArgument');
    });
  });

  describe('namespaces and deletion', () => {
    it("keeps another namespace's table of the same name apart", async () => {
      const [first, second] = [freshNamespace(), freshNamespace()];
      await store.table(first, 'shared').put('k', 'first');
      expect(await store.table(second, 'shared').get('k')).toBeNull();
      await store.table(second, 'shared').put('k', 'second');
      expect(await store.table(first, 'shared').get('k')).toMatchObject({ value: 'first' });
      expect((await store.table(second, 'shared').list()).entries.map((entry) => entry.value)).toEqual(['second']);
    });

    it('deleteTables removes the named tables of that namespace with every entry, and nothing else', async () => {
      const [namespace, other] = [freshNamespace(), freshNamespace()];
      const doomed = store.table(namespace, 'doomed');
      // More entries than one deletion batch, some with a TTL.
      for (let start = 0; start < 1200; start += 200) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => doomed.put(`k${start + i}`, i, (start + i) % 3 === 0 ? { ttlSeconds: 600 } : {})));
      }
      await store.table(namespace, 'kept').put('k', 'kept');
      await store.table(other, 'doomed').put('k', 'other namespace');
      expect((await redisKeysOf(namespace, 'doomed')).length).toBe(1203);

      await deleteTables(redis, namespace, ['doomed', 'never-used']);

      expect(await redisKeysOf(namespace, 'doomed')).toEqual([]);
      expect(await store.table(namespace, 'doomed').list()).toEqual({ entries: [] });
      expect(await store.table(namespace, 'kept').get('k')).toMatchObject({ value: 'kept' });
      expect(await store.table(other, 'doomed').get('k')).toMatchObject({ value: 'other namespace' });
    });
  });
});
