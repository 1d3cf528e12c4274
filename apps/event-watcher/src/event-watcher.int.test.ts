// The event-watcher against the real test control plane and a real Redis. Pods cannot run
// here (no kubelet), so the watcher runs as a local process (startPlatformService) with a
// ServiceAccount token that may only get/list/watch ConfigMaps in the test's namespace, and a
// Redis user that may only touch its lambda's keys. The delivery target is the test's own
// HTTP server standing in for the runner; the end-to-end path through api-controller and the
// runner is tested elsewhere.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { createTestNamespace, startRedis, testKubeConfig, waitUntil, type RedisServer } from '@kublambda/dev-servers';
import { watcherKeys, type DeadLetter, type LambdaName, type ResolvedWatchTrigger } from '@kublambda/watch-triggers';
import {
  createWatcherRedisUser,
  startApiServerProxy,
  startRecordingTarget,
  startWatcher,
  testWatcherConfig,
  writeWatcherKubeconfig,
  type ReceivedEvent,
  type RecordingTarget,
  type StartWatcherOptions,
  type WatcherUnderTest,
} from './watcher-harness.testing.ts';

const kubeConfig = testKubeConfig();
const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
let redis: RedisServer;
let admin: Redis;
let dir: string;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.adminUrl, { maxRetriesPerRequest: 1 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'event-watcher-test-'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A namespace, a lambda, its Redis user and restricted kubeconfig, and a recording target. */
async function setUp(name: string, triggers: Array<Partial<ResolvedWatchTrigger>>, options: { server?: string } = {}) {
  const namespace = await createTestNamespace(kubeConfig, 'watcher');
  cleanups.push(() => namespace.delete());
  const lambda: LambdaName = { namespace: namespace.name, name };
  const config = testWatcherConfig(lambda, triggers.map((trigger) => ({ namespace: namespace.name, ...trigger })));
  const redisUrl = await createWatcherRedisUser(redis, lambda);
  const kubeconfig = await writeWatcherKubeconfig(kubeConfig, { namespace: namespace.name, resource: 'configmaps', file: path.join(dir, `${namespace.name}.kubeconfig`), server: options.server });
  const target = await startRecordingTarget();
  cleanups.push(() => target.stop());
  const start = async (processName: string, overrides: Partial<StartWatcherOptions> = {}): Promise<WatcherUnderTest> => {
    const watcher = await startWatcher({ config, redisUrl, runnerUrl: target.url, kubeconfig, logDir: dir, name: `${namespace.name}-${processName}`, ...overrides });
    cleanups.push(() => watcher.process.stop());
    return watcher;
  };
  return { namespace: namespace.name, lambda, config, target, start };
}

const configMap = (name: string, labels: Record<string, string>, data: Record<string, string>): k8s.V1ConfigMap => ({ metadata: { name, labels }, data });

/** Runs calls with at most `limit` in flight: the API server and the watcher share two cores. */
async function inBatches<T>(items: T[], limit: number, call: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await call(items[next++]!);
  }));
}

const byName = (events: ReceivedEvent[], name: string) => events.filter((event) => event.body.metadata?.name === name);
const summary = (events: ReceivedEvent[]) => events.map((event) => `${event.type.split('.').at(-1)} ${event.subject.split('/')[1]}`).sort();

async function deadLetters(lambda: LambdaName): Promise<DeadLetter[]> {
  return (await admin.lrange(watcherKeys(lambda).deadLetters, 0, -1)).map((entry) => JSON.parse(entry) as DeadLetter);
}

describe('event-watcher', () => {
  it('delivers exactly the changes that match label, event type and condition', async () => {
    const { namespace, lambda, target, start } = await setUp('filters', [
      { labelSelector: 'app=demo', condition: 'object.data.enabled == "true"' },
      { labelSelector: 'app=other', events: ['DELETED'] },
    ]);
    const watcher = await start('w');
    await watcher.ready();

    await core.createNamespacedConfigMap({ namespace, body: configMap('off', { app: 'demo' }, { enabled: 'false' }) });
    await core.createNamespacedConfigMap({ namespace, body: configMap('stranger', {}, { enabled: 'true' }) });
    // Without data.enabled the condition fails to evaluate: counted, logged, not delivered.
    await core.createNamespacedConfigMap({ namespace, body: configMap('incomplete', { app: 'demo' }, { other: 'x' }) });
    await core.createNamespacedConfigMap({ namespace, body: configMap('other', { app: 'other' }, {}) });
    const on = await core.createNamespacedConfigMap({ namespace, body: configMap('on', { app: 'demo' }, { enabled: 'true' }) });
    await waitUntil('ADDED on', () => byName(target.accepted(), 'on').length === 1);
    const changed = await core.patchNamespacedConfigMap({ namespace, name: 'on', body: { data: { enabled: 'true', v: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await core.patchNamespacedConfigMap({ namespace, name: 'off', body: { data: { enabled: 'false', v: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await waitUntil('MODIFIED on', () => byName(target.accepted(), 'on').length === 2);
    await core.deleteNamespacedConfigMap({ namespace, name: 'other' });
    await core.deleteNamespacedConfigMap({ namespace, name: 'on' });
    await waitUntil('both deletions', () => target.accepted().length >= 4, { describe: () => JSON.stringify(summary(target.received)) });

    expect(summary(target.accepted())).toEqual(['added on', 'deleted on', 'deleted other', 'modified on']);
    const [added, modified, deleted] = byName(target.accepted(), 'on');
    const uid = on.metadata!.uid!;
    expect(added).toMatchObject({ type: 'io.kublambda.resource.added', id: `${uid}/${on.metadata!.resourceVersion}`, subject: `${namespace}/on` });
    expect(added!.body).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', data: { enabled: 'true' } });
    expect(added!.oldObject).toBeUndefined();
    expect(modified).toMatchObject({ type: 'io.kublambda.resource.modified', id: `${uid}/${changed.metadata!.resourceVersion}` });
    expect(modified!.body.data).toEqual({ enabled: 'true', v: '2' });
    expect(modified!.oldObject!.metadata.resourceVersion).toBe(on.metadata!.resourceVersion);
    expect(deleted).toMatchObject({ type: 'io.kublambda.resource.deleted', id: `${uid}/deleted` });
    expect(await watcher.metric('kublambda_watcher_events_delivered_total')).toBe(4);
    expect(await watcher.metric('kublambda_watcher_events_seen_total', { trigger: '0' })).toBeGreaterThanOrEqual(5);
    expect(await watcher.metric('kublambda_watcher_relists_total', { reason: 'start' })).toBe(2);
    expect(await watcher.metric('kublambda_watcher_lease_held')).toBe(1);
    expect(await watcher.metric('kublambda_watcher_condition_errors_total', { trigger: '0' })).toBe(1);
    expect(await readFile(watcher.process.logFile, 'utf8')).toMatch(/"message":"the condition failed on an object; counted as not matched".*"object":"[^"]+\/incomplete"/);

    // SIGTERM: a clean stop gives the lease back at once.
    expect(await admin.get(watcherKeys(lambda).lease)).toBe(`${namespace}-w`);
    await watcher.process.stop();
    expect(await admin.exists(watcherKeys(lambda).lease)).toBe(0);
    expect(await readFile(watcher.process.logFile, 'utf8')).toContain('"message":"stopped"');
  });

  it('reports a trigger it may not watch clearly and stays unready', async () => {
    // The watcher's Role allows ConfigMaps only.
    const { namespace, start } = await setUp('denied', [{ apiVersion: 'v1', kind: 'Secret', resource: 'secrets' }]);
    const watcher = await start('w');
    await waitUntil('the denial to be logged', async () => (await readFile(watcher.process.logFile, 'utf8')).includes("not allowed to list/watch the resource"));
    const log = await readFile(watcher.process.logFile, 'utf8');
    expect(log).toMatch(new RegExp(`"error":"HTTP 403: [^"]*secrets[^"]*".*"resource":"secrets".*"resourceNamespace":"${namespace}"`));
    expect(await watcher.readiness()).toEqual({ status: 503, body: { status: 'not ready', reason: 'syncing trigger 0' } });
  });

  it('retries 503, dead-letters what keeps failing with 500 and at once what gets a 400', async () => {
    const { namespace, lambda, config, target, start } = await setUp('retries', [{ labelSelector: 'test=retries', events: ['ADDED'] }]);
    target.answer = (event) => {
      const name = event.subject.split('/')[1];
      if (name === 'flaky') return event.attempt <= 2 ? 503 : 200;
      if (name === 'broken') return 500;
      if (name === 'refused') return 400;
      return 200;
    };
    const watcher = await start('w');
    for (const name of ['flaky', 'broken', 'refused']) await core.createNamespacedConfigMap({ namespace, body: configMap(name, { test: 'retries' }, {}) });

    await waitUntil('flaky delivered', () => byName(target.accepted(), 'flaky').length === 1);
    const letters = await waitUntil('two dead letters', async () => {
      const found = await deadLetters(lambda);
      return found.length === 2 && found;
    });
    const broken = letters.find((letter) => letter.subject.endsWith('/broken'))!;
    const refused = letters.find((letter) => letter.subject.endsWith('/refused'))!;
    expect(broken).toMatchObject({ type: 'io.kublambda.resource.added', attempts: 4, triggerIndex: 0 });
    expect(broken.lastError).toMatch(/^HTTP 500: failing on purpose/);
    expect(broken.object).toMatchObject({ metadata: { name: 'broken' } });
    expect(refused).toMatchObject({ attempts: 1, lastError: 'HTTP 400: failing on purpose with 400' });
    expect(byName(target.received, 'refused')).toHaveLength(1);
    expect(byName(target.received, 'flaky')).toHaveLength(3);
    expect(await watcher.metric('kublambda_watcher_delivery_retries_total')).toBe(2 + 3);
    expect(await watcher.metric('kublambda_watcher_events_dead_lettered_total', { trigger: '0' })).toBe(2);
    // The checkpoint moved past the dead letters: a restart does not deliver them again.
    const uids = await admin.hkeys(watcherKeys(lambda).objects(config.triggers[0]!.id));
    expect(uids).toHaveLength(3);
  });

  it('loses nothing when killed while 500 ConfigMaps change: every last state and every deletion arrives after a restart', async () => {
    const { namespace, lambda, config, target, start } = await setUp('crash', [{ labelSelector: 'test=crash' }]);
    const first = await start('first');
    await first.ready();
    const names = Array.from({ length: 500 }, (_, i) => `cm-${i}`);
    const uids = new Map<string, string>();
    let killed: Promise<void> | undefined;
    await inBatches(names, 8, async (name) => {
      const created = await core.createNamespacedConfigMap({ namespace, body: configMap(name, { test: 'crash' }, { v: '1' }) });
      uids.set(name, created.metadata!.uid!);
      if (uids.size === 150) killed = first.process.kill();
    });
    await killed;
    const deliveredBeforeCrash = target.accepted().length;
    // What the killed watcher had checkpointed: the objects the lambda is sure to hear about again.
    const checkpointed = new Set(await admin.hkeys(watcherKeys(lambda).objects(config.triggers[0]!.id)));
    await inBatches(names, 8, (name) => core.patchNamespacedConfigMap({ namespace, name, body: { data: { v: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
    const deleted = names.filter((_, i) => i % 2 === 0);
    await inBatches(deleted, 8, (name) => core.deleteNamespacedConfigMap({ namespace, name }));

    const remaining = await core.listNamespacedConfigMap({ namespace, labelSelector: 'test=crash' });
    // Half the deleted objects were created and deleted while no watcher ran: only resuming the
    // watch from the checkpoint's resourceVersion (a relist could not) tells the lambda about them.
    const unknownDeleted = deleted.filter((name) => !checkpointed.has(uids.get(name)!));
    const lastIds = new Map<string, string>([
      ...remaining.items.map((item) => [item.metadata!.name!, `${item.metadata!.uid}/${item.metadata!.resourceVersion}`] as const),
      ...deleted.map((name) => [name, `${uids.get(name)}/deleted`] as const),
    ]);
    expect(remaining.items).toHaveLength(250);
    expect(unknownDeleted.length).toBeGreaterThan(0);
    const second = await start('second');
    const missing = () => [...lastIds.values()].filter((id) => !target.accepted().some((event) => event.id === id));
    await waitUntil('every last state and every deletion to be delivered', () => missing().length === 0, {
      timeoutMs: 120_000,
      intervalMs: 250,
      describe: () => `${missing().length} missing, e.g. ${missing().slice(0, 3).join(', ')}`,
    });
    // In order per object: what each object's last delivery says is its final state.
    const lastDelivered = new Map<string, string>();
    for (const event of target.accepted()) lastDelivered.set(event.subject.split('/')[1]!, event.id);
    expect([...lastIds].filter(([name, id]) => lastDelivered.get(name) !== id)).toEqual([]);
    // It resumed the watch rather than relisting.
    expect(await second.metric('kublambda_watcher_relists_total')).toBe(0);
    console.log(
      `crash test: ${deliveredBeforeCrash} events delivered before the SIGKILL (${checkpointed.size} checkpointed), ${target.accepted().length} in all; ` +
        `delivered ${remaining.items.length}/${remaining.items.length} last states and ${deleted.length}/${deleted.length} deletions (${unknownDeleted.length} of objects the killed watcher never checkpointed)`,
    );
  }, 180_000);

  it('relists and diffs after 410 Gone, as an HTTP answer and as an ERROR event, and loses nothing', async () => {
    const proxy = await startApiServerProxy(kubeConfig);
    cleanups.push(() => proxy.stop());
    const { namespace, target, start } = await setUp('gone', [{ labelSelector: 'test=gone' }], { server: proxy.url });
    const watcher = await start('w');
    await watcher.ready();
    const create = async (name: string) => core.createNamespacedConfigMap({ namespace, body: configMap(name, { test: 'gone' }, { v: '1' }) });
    const change = async (name: string, v: string) => core.patchNamespacedConfigMap({ namespace, name, body: { data: { v } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    const id = (object: k8s.V1ConfigMap) => `${object.metadata!.uid}/${object.metadata!.resourceVersion}`;
    const delivered = (...ids: string[]) => waitUntil(`${ids.join(', ')} delivered`, () => ids.every((wanted) => target.accepted().some((event) => event.id === wanted)), {
      describe: () => JSON.stringify(target.accepted().map((event) => event.id)),
    });
    const goneRelists = () => watcher.metric('kublambda_watcher_relists_total', { reason: 'gone' });

    const g1 = await create('g1');
    await delivered(id(g1));
    await waitUntil('the watch to be open', () => proxy.watches > 0);

    // An HTTP 410 answer to the next watch: the open one is cut, so the watcher re-watches now.
    proxy.answerNextWatchWithGone();
    expect(proxy.endWatches()).toBe(1);
    const g2 = await create('g2');
    const g1v2 = await change('g1', '2');
    await waitUntil('a relist after the 410 answer', async () => (await goneRelists()) >= 1);
    await delivered(id(g2), id(g1v2));

    // An ERROR event with a 410 Status inside an open watch; what was just changed may be cut off with it.
    await waitUntil('the watch to be open again', () => proxy.endWatchesWithGoneEvent() === 1 || undefined, { intervalMs: 50 });
    const g3 = await create('g3');
    const g2v2 = await change('g2', '2');
    await core.deleteNamespacedConfigMap({ namespace, name: 'g1' });
    await waitUntil('a relist after the ERROR event', async () => (await goneRelists()) >= 2);
    await delivered(id(g3), id(g2v2), `${g1.metadata!.uid}/deleted`);
    const g1Events = target.accepted().filter((event) => event.subject.endsWith('/g1')).map((event) => event.type.split('.').at(-1));
    expect(g1Events).toEqual(['added', 'modified', 'deleted']);
  });

  it('lets only the lease holder deliver, and the other take over when it is killed, losing nothing', async () => {
    const { namespace, lambda, config, target, start } = await setUp('fence', [{ labelSelector: 'test=fence' }]);
    // Each watcher delivers to a target of its own, so the test sees who delivered what.
    const otherTarget = await startRecordingTarget();
    cleanups.push(() => otherTarget.stop());
    const [a, b] = await Promise.all([start('a'), start('b', { runnerUrl: otherTarget.url })]);
    const [readyA] = await waitUntil('one watcher ready, the other waiting', async () => {
      const states = await Promise.all([a.readiness(), b.readiness()]);
      return states[0]!.status + states[1]!.status === 200 + 503 && states;
    });
    const [holder, holderTarget, standby, standbyTarget] = readyA!.status === 200 ? [a, target, b, otherTarget] : [b, otherTarget, a, target];
    expect((await standby.readiness()).body).toEqual({ status: 'not ready', reason: 'waiting for the lease' });
    expect(await standby.metric('kublambda_watcher_lease_held')).toBe(0);

    const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
    const uids = new Map<string, string>();
    for (const name of names.slice(0, 10)) uids.set(name, (await core.createNamespacedConfigMap({ namespace, body: configMap(name, { test: 'fence' }, {}) })).metadata!.uid!);
    await waitUntil('the holder to deliver the first ten', () => holderTarget.accepted().length === 10);
    expect(standbyTarget.received).toHaveLength(0);
    await waitUntil('the holder to checkpoint them', async () => (await admin.hlen(watcherKeys(lambda).objects(config.triggers[0]!.id))) === 10);

    await holder.process.kill();
    for (const name of names.slice(10)) uids.set(name, (await core.createNamespacedConfigMap({ namespace, body: configMap(name, { test: 'fence' }, {}) })).metadata!.uid!);
    for (const name of names.slice(0, 5)) await core.patchNamespacedConfigMap({ namespace, name, body: { data: { v: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    for (const name of names.slice(5, 10)) await core.deleteNamespacedConfigMap({ namespace, name });
    await standby.ready();

    const remaining = await core.listNamespacedConfigMap({ namespace, labelSelector: 'test=fence' });
    const expected = [
      ...remaining.items.map((item) => `${item.metadata!.uid}/${item.metadata!.resourceVersion}`),
      ...names.slice(5, 10).map((name) => `${uids.get(name)}/deleted`),
    ];
    const missing = () => expected.filter((id) => !standbyTarget.accepted().some((event) => event.id === id));
    await waitUntil('the standby to deliver every change made after the takeover', () => missing().length === 0, { describe: () => missing().join(', ') });
    // The first ten were checkpointed by the holder: the standby does not deliver them again.
    expect(standbyTarget.accepted().filter((event) => event.type.endsWith('.added') && names.slice(0, 10).includes(event.subject.split('/')[1]!))).toHaveLength(0);
  });
});
