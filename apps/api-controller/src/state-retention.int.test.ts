// What happens to a deleted lambda's state tables. api-controller runs as a local process
// against the real API server and Redis (see lambda-platform.testing.ts). No builder runs: a
// deletion goes through cleanup once the controller has put its finalizer on, which it does on
// its first pass, built or not.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { logTail, waitUntil, type ManagedProcess } from '@kublambda/dev-servers';
import { ACL_RULES, STATE_KEYS } from '@kublambda/redis-acl';
import { createStateStore, type StateStore } from '@kublambda/state-tables';
import { startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';
import { FINALIZER } from './reconcile-lambda.ts';

let platform: LambdaPlatform;
let controller: ManagedProcess;
let redis: Redis;
let store: StateStore;

beforeAll(async () => {
  platform = await startLambdaPlatform('retention');
  controller = await platform.startController();
  redis = new Redis(platform.redis.adminUrl);
  store = createStateStore(redis);
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await platform?.stop();
});

const source = { inline: 'export default () => new Response("stateful")' };
/** Same table names as the lambdas use, in a namespace of their own: different tables. */
const OTHER_NAMESPACE = 'another-namespace';

async function fill(namespace: string, table: string, count = 3): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => store.table(namespace, table).put(`key-${i}`, { i })));
}

async function entryCount(namespace: string, table: string): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const page = await store.table(namespace, table).list({ limit: 1000, cursor });
    count += page.entries.length;
    cursor = page.cursor;
  } while (cursor);
  return count;
}

/** Every Redis key of the table: entries, index, expiry set and version counter. */
async function redisKeysOf(namespace: string, table: string): Promise<string[]> {
  return (await platform.redisKeys()).filter((key) => key.includes(`{${namespace}/${table}}`));
}

async function applyWithFinalizer(name: string, spec: Record<string, unknown>): Promise<void> {
  await platform.apply(name, { source, ...spec });
  await platform.waitFor(name, 'given the cleanup finalizer', (l) => l?.metadata.finalizers?.includes(FINALIZER) ?? false);
}

async function deleteAndWaitGone(name: string): Promise<void> {
  await platform.remove(name);
  await platform.waitFor(name, 'gone', (l) => l === undefined, 30_000);
}

async function eventsAbout(name: string): Promise<k8s.EventsV1Event[]> {
  const api = platform.kubeConfig.makeApiClient(k8s.EventsV1Api);
  return (await api.listNamespacedEvent({ namespace: platform.namespace, fieldSelector: `regarding.name=${name}` })).items;
}

describe('state tables of a deleted lambda', () => {
  it('keeps the tables by default: data outlives code', async () => {
    await applyWithFinalizer('keeper', { stateTables: ['visits'] });
    await fill(platform.namespace, 'visits');
    await deleteAndWaitGone('keeper');
    expect(await entryCount(platform.namespace, 'visits')).toBe(3);
    expect(await store.table(platform.namespace, 'visits').get('key-0')).toMatchObject({ value: { i: 0 } });
  });

  it('with stateRetention Delete, removes the tables no remaining lambda declares, and only in its namespace', async () => {
    await applyWithFinalizer('a', { stateTables: ['shared', 'own'], stateRetention: 'Delete' });
    await applyWithFinalizer('b', { stateTables: ['shared'] });
    // More entries than one deletion batch (500).
    await fill(platform.namespace, 'own', 1_200);
    await store.table(platform.namespace, 'own').increment('counter');
    await fill(platform.namespace, 'shared');
    await fill(OTHER_NAMESPACE, 'own');
    await fill(OTHER_NAMESPACE, 'shared');
    expect(await redisKeysOf(platform.namespace, 'own')).toHaveLength(1_200 + 1 + 2); // entries, index, version

    await deleteAndWaitGone('a');
    expect(await redisKeysOf(platform.namespace, 'own')).toEqual([]);
    expect(await store.table(platform.namespace, 'own').get('key-0')).toBeNull();
    // b still declares it.
    expect(await entryCount(platform.namespace, 'shared')).toBe(3);
    // Tables of the same names in another namespace are other tables.
    expect(await entryCount(OTHER_NAMESPACE, 'own')).toBe(3);
    expect(await entryCount(OTHER_NAMESPACE, 'shared')).toBe(3);
    expect(await readFile(controller.logFile, 'utf8')).toMatch(/"message":"cleaned up deleted lambda".*"stateTables":\["own"\]/);

    // Once b goes with stateRetention Delete too, nothing declares the shared table any more.
    await platform.apply('b', { source, stateTables: ['shared'], stateRetention: 'Delete' });
    await deleteAndWaitGone('b');
    expect(await redisKeysOf(platform.namespace, 'shared')).toEqual([]);
    expect(await entryCount(OTHER_NAMESPACE, 'shared')).toBe(3);
  });

  it('keeps the lambda Terminating, with a Warning event, while Redis refuses the deletion, and finishes once it accepts', async () => {
    await applyWithFinalizer('refused', { stateTables: ['doomed'], stateRetention: 'Delete' });
    await fill(platform.namespace, 'doomed');
    // Takes the state tables from the controller's Redis user, leaving it the build queue and
    // the route table, so the table deletion is what fails.
    const keysOf = (patterns: readonly string[]) => patterns.map((pattern) => `~${pattern}`);
    const controllerKeys = ACL_RULES['api-controller'].readWriteKeys;
    await redis.call('ACL', 'SETUSER', 'api-controller', 'resetkeys', ...keysOf(controllerKeys.filter((pattern) => pattern !== STATE_KEYS)));
    try {
      await platform.remove('refused');
      const [event] = await waitUntil(
        'a Warning event about the state tables',
        async () => {
          const found = (await eventsAbout('refused')).filter((e) => e.reason === 'StateTablesNotDeleted');
          return found.length > 0 && found;
        },
        { describe: () => logTail(controller.logFile) },
      );
      expect(event).toMatchObject({ type: 'Warning', note: expect.stringMatching(/^could not delete state tables doomed: .*NOPERM.*; the Lambda stays until they are deleted$/) });
      const terminating = await platform.get('refused');
      expect(terminating?.metadata.deletionTimestamp).toBeDefined();
      expect(terminating?.metadata.finalizers).toContain(FINALIZER);
      expect(await readFile(controller.logFile, 'utf8')).toContain('deleting state tables doomed of Lambda');
    } finally {
      await redis.call('ACL', 'SETUSER', 'api-controller', 'resetkeys', ...keysOf(controllerKeys));
    }
    await platform.waitFor('refused', 'gone once Redis accepts again', (l) => l === undefined, 30_000);
    expect(await redisKeysOf(platform.namespace, 'doomed')).toEqual([]);
  });

  it('keeps the lambda Terminating while Redis does not answer, and finishes once it does', async () => {
    await applyWithFinalizer('frozen', { stateTables: ['paused'], stateRetention: 'Delete' });
    await fill(platform.namespace, 'paused');
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1]);
    // SIGSTOP: Redis keeps its connections but answers nothing, as a hung or unreachable one.
    process.kill(pid, 'SIGSTOP');
    try {
      await platform.remove('frozen');
      // Several attempts' worth of time, during which the deletion must not get through.
      await sleep(3_000);
      const terminating = await platform.get('frozen');
      expect(terminating?.metadata.deletionTimestamp).toBeDefined();
      expect(terminating?.metadata.finalizers).toContain(FINALIZER);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await platform.waitFor('frozen', 'gone once Redis answers again', (l) => l === undefined, 30_000);
    expect(await redisKeysOf(platform.namespace, 'paused')).toEqual([]);
  });
});
