// The event-watcher against the real test control plane and a real Redis. Pods cannot run
// here (no kubelet), so the watcher runs as a local process (startPlatformService) with a
// ServiceAccount token that may only get/list/watch ConfigMaps in the test's namespace, and a
// Redis user that may only touch its lambda's keys. The delivery target is the test's own
// HTTP server standing in for the runner; the end-to-end path through api-controller and the
// runner is tested elsewhere.
import { mkdtemp, rm } from 'node:fs/promises';
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
    const { namespace, target, start } = await setUp('filters', [
      { labelSelector: 'app=demo', condition: 'object.data.enabled == "true"' },
      { labelSelector: 'app=other', events: ['DELETED'] },
    ]);
    const watcher = await start('w');
    await waitUntil('the watcher to be ready', async () => (await watcher.readiness()).status === 200);

    await core.createNamespacedConfigMap({ namespace, body: configMap('off', { app: 'demo' }, { enabled: 'false' }) });
    await core.createNamespacedConfigMap({ namespace, body: configMap('stranger', {}, { enabled: 'true' }) });
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
});
