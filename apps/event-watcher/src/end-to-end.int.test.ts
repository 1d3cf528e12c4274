// Watch triggers end to end: api-controller, builder and runner run as local processes against
// the real API server (with kube-controller-manager, kube-scheduler and kwok, which makes the
// watcher's pod Ready though nothing runs in it), Redis and S3. Pods cannot run here, so the
// watcher runs as a local process made from the Deployment api-controller wrote: its env, and
// a token of the ServiceAccount api-controller made, from the TokenRequest API. It delivers
// through the runner to the lambda, which records each CloudEvent in a state table; the test
// reads the table back through the lambda.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { freePort, kubectl, startDeploymentLocally, UNCACHED_TEST_RESOURCE, waitUntil, type LocalDeployment } from '@kublambda/dev-servers';
import { watcherKeys, type DeadLetter } from '@kublambda/watch-triggers';
import { isReady, startLambdaPlatform, type LambdaPlatform } from '../../api-controller/src/lambda-platform.testing.ts';

let platform: LambdaPlatform;
let runner: string;
let core: k8s.CoreV1Api;
let admin: Redis;
const watchers: LocalDeployment[] = [];

// A custom resource of the test's own, which the platform's configuration makes watchable.
const WIDGET_GROUP = 'watch-e2e.kublambda.test';
const crd = (plural: string, group: string, kind: string) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural, singular: kind.toLowerCase(), kind },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
});
// Notes are the one kind the test control plane's API server serves without its watch cache
// (UNCACHED_TEST_RESOURCE): a watch of them from a revision etcd has compacted gets 410 Gone.
const [NOTE_PLURAL, NOTE_GROUP] = [UNCACHED_TEST_RESOURCE.split('.')[0]!, UNCACHED_TEST_RESOURCE.split('.').slice(1).join('.')];
const crds = [crd('widgets', WIDGET_GROUP, 'Widget'), crd(NOTE_PLURAL, NOTE_GROUP, 'Note')];

beforeAll(async () => {
  platform = await startLambdaPlatform('watch-e2e');
  core = platform.kubeConfig.makeApiClient(k8s.CoreV1Api);
  admin = new Redis(platform.redis.adminUrl);
  for (const definition of crds) {
    const installed = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(definition) });
    if (installed.exitCode !== 0) throw new Error(`installing CRD ${definition.metadata.name}: ${installed.stderr}`);
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', `crd/${definition.metadata.name}`]);
  }
  await platform.startBuilder();
  await platform.startController(undefined, { WATCHABLE_RESOURCES: `configmaps,apps/deployments,${WIDGET_GROUP}/widgets,${NOTE_GROUP}/${NOTE_PLURAL}` });
  runner = await platform.startRunner();
}, 120_000);
afterEach(async () => {
  for (const watcher of watchers.splice(0)) await watcher.process.stop();
});
afterAll(async () => {
  admin?.disconnect();
  await platform?.stop();
  for (const definition of crds) await kubectl(['delete', 'crd', definition.metadata.name, '--ignore-not-found', '--wait=false']);
});

/**
 * A lambda that records every resource event it gets (POST) and lists them (GET). State tables
 * belong to the namespace, so each recorder keeps its own: events-<its name>.
 */
const recorder = `
import { readResourceEvent } from '@kublambda/lambda-api';
export default async (request: Request, context) => {
  const events = context.state.table('events-' + context.lambda.name);
  if (request.method === 'GET') {
    const all = [];
    let cursor;
    do {
      const page = await events.list({ cursor, limit: 1000 });
      all.push(...page.entries.map((entry) => entry.value));
      cursor = page.cursor;
    } while (cursor);
    return Response.json(all);
  }
  const event = await readResourceEvent(request);
  const data = event.object.data ?? {};
  // Fails as the ConfigMap asks: "always", or the first N attempts of each event.
  if (data.fail === 'always') return new Response('failing for good', { status: 500 });
  if (data.fail) {
    const attempts = await context.state.table('attempts-' + context.lambda.name).increment(event.id);
    if (attempts <= Number(data.fail)) return new Response('not yet', { status: 503 });
  }
  await events.put(event.id, {
    id: event.id,
    type: event.type,
    subject: event.subject,
    trigger: event.triggerIndex,
    kind: event.object.kind ?? null,
    data,
    old: event.oldObject?.data ?? null,
    ceType: request.headers.get('ce-type'),
  });
  return new Response('recorded');
};
`;

interface Recorded {
  id: string;
  type: string;
  subject: string;
  trigger: number;
  kind: string | null;
  data: Record<string, string>;
  old: Record<string, string> | null;
  ceType: string;
}

async function recorded(name: string): Promise<Recorded[]> {
  const response = await fetch(`${runner}/${platform.namespace}/${name}`);
  if (!response.ok) throw new Error(`GET ${name}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Recorded[];
}

/** Applies the lambda, waits for its watcher Deployment, and runs that Deployment here. */
async function deployRecorder(name: string, watch: Array<Record<string, unknown>>, env: Record<string, string> = {}): Promise<LocalDeployment> {
  await platform.apply(name, { source: { inline: recorder }, stateTables: [`events-${name}`, `attempts-${name}`], triggers: { watch } });
  await platform.waitFor(name, 'Ready', isReady, 90_000);
  return runWatcher(name, env);
}

async function runWatcher(name: string, env: Record<string, string> = {}): Promise<LocalDeployment> {
  const watcher = await startDeploymentLocally({
    kubeConfig: platform.kubeConfig,
    namespace: platform.namespace,
    name: `kublambda-watch-${name}`,
    app: 'event-watcher',
    env: { RUNNER_URL: runner, HOST: '127.0.0.1', PORT: String(await freePort()), RETRY_INITIAL_MS: '50', RETRY_MAX_MS: '500', LEASE_DURATION_MS: '3000', LEASE_RENEW_MS: '1000', ...env },
    logDir: platform.logDir,
    processName: `watcher-${name}-${watchers.length}`,
  });
  watchers.push(watcher);
  // Ready once it holds the lease and has listed every trigger: changes from now on are events.
  await waitUntil(`the watcher of ${name} to be ready`, async () => (await fetch(`http://127.0.0.1:${watcher.env.PORT}/readyz`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });
  return watcher;
}

const configMap = (name: string, labels: Record<string, string>, data: Record<string, string>): k8s.V1ConfigMap => ({ metadata: { name, labels }, data });

describe('a lambda with a ConfigMap watch trigger', () => {
  it('receives exactly the matching changes as CloudEvents, and nothing else', async () => {
    await deployRecorder('cm-recorder', [
      { apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=demo', events: ['ADDED', 'MODIFIED', 'DELETED'], condition: 'object.data.enabled == "true"' },
      { apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=deletions', events: ['DELETED'] },
    ]);
    const namespace = platform.namespace;
    const demo = { app: 'demo' };
    const created = await core.createNamespacedConfigMap({ namespace, body: configMap('matching', demo, { enabled: 'true', n: '1' }) });
    await core.createNamespacedConfigMap({ namespace, body: configMap('wrong-label', { app: 'other' }, { enabled: 'true' }) });
    await core.createNamespacedConfigMap({ namespace, body: configMap('disabled', demo, { enabled: 'false' }) });
    const modified = await core.replaceNamespacedConfigMap({ namespace, name: 'matching', body: { ...created, data: { enabled: 'true', n: '2' } } });
    await core.deleteNamespacedConfigMap({ namespace, name: 'matching' });
    const typed = await core.createNamespacedConfigMap({ namespace, body: configMap('only-deletion', { app: 'deletions' }, { v: '1' }) });
    await core.replaceNamespacedConfigMap({ namespace, name: 'only-deletion', body: { ...typed, data: { v: '2' } } });
    await core.deleteNamespacedConfigMap({ namespace, name: 'only-deletion' });
    // A last change the lambda must see, so the test knows the earlier ones have been handled.
    await core.createNamespacedConfigMap({ namespace, body: configMap('last', demo, { enabled: 'true' }) });

    // Five events are due; different objects are delivered in parallel, so they come in any order.
    let events: Recorded[] = [];
    await waitUntil('the five matching events', async () => (events = await recorded('cm-recorder')).length >= 5, { timeoutMs: 60_000, describe: () => JSON.stringify(events) });
    const uid = created.metadata!.uid!;
    const order = ['ADDED', 'MODIFIED', 'DELETED'];
    const forMatching = events.filter((event) => event.subject === `${namespace}/matching`).sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
    expect(forMatching.map(({ id, type, data, old, ceType }) => ({ id, type, data, old, ceType }))).toEqual([
      { id: `${uid}/${created.metadata!.resourceVersion}`, type: 'ADDED', data: { enabled: 'true', n: '1' }, old: null, ceType: 'io.kublambda.resource.added' },
      { id: `${uid}/${modified.metadata!.resourceVersion}`, type: 'MODIFIED', data: { enabled: 'true', n: '2' }, old: { enabled: 'true', n: '1' }, ceType: 'io.kublambda.resource.modified' },
      { id: `${uid}/deleted`, type: 'DELETED', data: { enabled: 'true', n: '2' }, old: { enabled: 'true', n: '2' }, ceType: 'io.kublambda.resource.deleted' },
    ]);
    // The wrong label, the condition false, an event type not asked for: never delivered.
    const others = events.filter((event) => event.subject !== `${namespace}/matching`).map((event) => `${event.trigger} ${event.type} ${event.subject}`);
    expect(others.sort()).toEqual([`0 ADDED ${namespace}/last`, `1 DELETED ${namespace}/only-deletion`]);
  }, 180_000);
});

describe('watchable kinds', () => {
  it('watches apps/v1 Deployments and a custom resource the test installs', async () => {
    await deployRecorder('kinds-recorder', [
      { apiVersion: 'apps/v1', kind: 'Deployment', labelSelector: 'app=watched', events: ['ADDED'] },
      { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', labelSelector: 'app=watched', events: ['ADDED'] },
    ]);
    const apps = platform.kubeConfig.makeApiClient(k8s.AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: platform.namespace,
      body: {
        metadata: { name: 'watched-web', labels: { app: 'watched' } },
        spec: { replicas: 0, selector: { matchLabels: { app: 'watched' } }, template: { metadata: { labels: { app: 'watched' } }, spec: { containers: [{ name: 'web', image: 'example.invalid/web:1' }] } } },
      },
    });
    await platform.kubeConfig.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: WIDGET_GROUP, version: 'v1', plural: 'widgets', namespace: platform.namespace,
      body: { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'watched-widget', labels: { app: 'watched' } }, spec: { size: 3 } },
    });
    const events = await waitUntil('both kinds to be delivered', async () => {
      const seen = await recorded('kinds-recorder');
      return seen.length >= 2 && seen;
    }, { timeoutMs: 60_000 });
    expect(events.map(({ type, subject, kind, trigger }) => ({ type, subject, kind, trigger })).sort((a, b) => a.trigger - b.trigger)).toEqual([
      { type: 'ADDED', subject: `${platform.namespace}/watched-web`, kind: 'Deployment', trigger: 0 },
      { type: 'ADDED', subject: `${platform.namespace}/watched-widget`, kind: 'Widget', trigger: 1 },
    ]);
  }, 180_000);
});

/** Runs `count` calls with at most `parallel` in flight. */
async function inBatches(count: number, parallel: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await call(next++);
  }));
}

describe('no lost events', () => {
  it('delivers the last state of every object and every deletion when the watcher is SIGKILLed mid-stream', async () => {
    const COUNT = 500;
    const first = await deployRecorder('kill-recorder', [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=bulk' }]);
    const namespace = platform.namespace;
    const name = (i: number) => `bulk-${i}`;
    const stores = new Map<number, k8s.V1ConfigMap>();
    let killed = false;
    await inBatches(COUNT, 8, async (i) => {
      stores.set(i, await core.createNamespacedConfigMap({ namespace, body: configMap(name(i), { app: 'bulk' }, { step: 'created' }) }));
      // A third of the way in, the watcher dies as a crash or an evicted pod would.
      if (i === Math.floor(COUNT / 3) && !killed) {
        killed = true;
        await first.process.kill();
      }
    });
    await inBatches(COUNT, 8, async (i) => {
      if (i % 5 === 0) await core.deleteNamespacedConfigMap({ namespace, name: name(i) });
      else stores.set(i, await core.replaceNamespacedConfigMap({ namespace, name: name(i), body: { ...stores.get(i)!, data: { step: 'changed' } } }));
    });
    await runWatcher('kill-recorder');

    const expected = new Map<string, string>();
    for (let i = 0; i < COUNT; i++) {
      const object = stores.get(i)!;
      expected.set(i % 5 === 0 ? `${object.metadata!.uid}/deleted` : `${object.metadata!.uid}/${object.metadata!.resourceVersion}`, i % 5 === 0 ? 'DELETED' : 'last state');
    }
    let seen: Recorded[] = [];
    const missing = () => [...expected.keys()].filter((id) => !seen.some((event) => event.id === id));
    await waitUntil('every last state and deletion to be delivered', async () => {
      seen = await recorded('kill-recorder');
      return missing().length === 0;
    }, { timeoutMs: 150_000, intervalMs: 1_000, describe: () => `${missing().length} missing, for example ${missing().slice(0, 3).join(', ')}` });
    const delivered = [...expected.keys()].filter((id) => seen.some((event) => event.id === id)).length;
    console.log(`watcher SIGKILLed mid-stream: delivered ${delivered}/${expected.size} last states and deletions (${seen.length} distinct events recorded)`);
    expect(delivered).toBe(expected.size);
    expect(seen.filter((event) => event.type === 'DELETED').every((event) => event.data.step === 'changed' || event.data.step === 'created')).toBe(true);
  }, 300_000);

  it('misses nothing when etcd is compacted past the watcher\'s resourceVersion while it is stopped', async () => {
    const watcher = await deployRecorder('compact-recorder', [{ apiVersion: `${NOTE_GROUP}/v1`, kind: 'Note', labelSelector: 'app=compact' }]);
    const custom = platform.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const notes = { group: NOTE_GROUP, version: 'v1', plural: NOTE_PLURAL, namespace: platform.namespace };
    type Note = { metadata: { name: string; uid: string; resourceVersion: string } };
    const note = (name: string, v: string) => ({ apiVersion: `${NOTE_GROUP}/v1`, kind: 'Note', metadata: { name, labels: { app: 'compact' } }, data: { v } });
    const kept = (await custom.createNamespacedCustomObject({ ...notes, body: note('compact-kept', '1') })) as Note;
    const gone = (await custom.createNamespacedCustomObject({ ...notes, body: note('compact-gone', '1') })) as Note;
    await waitUntil('both to be delivered', async () => (await recorded('compact-recorder')).length === 2, { timeoutMs: 60_000 });
    await watcher.process.stop();
    watchers.splice(watchers.indexOf(watcher), 1);

    const changed = (await custom.replaceNamespacedCustomObject({ ...notes, name: 'compact-kept', body: { ...note('compact-kept', '2'), metadata: { ...note('compact-kept', '2').metadata, resourceVersion: kept.metadata.resourceVersion } } })) as Note;
    await custom.deleteNamespacedCustomObject({ ...notes, name: 'compact-gone' });
    const added = (await custom.createNamespacedCustomObject({ ...notes, body: note('compact-new', '1') })) as Note;
    await compactEtcd();

    const restarted = await runWatcher('compact-recorder');
    const ids = [`${kept.metadata.uid}/${changed.metadata.resourceVersion}`, `${gone.metadata.uid}/deleted`, `${added.metadata.uid}/${added.metadata.resourceVersion}`];
    const events = await waitUntil('the changes made while it was stopped', async () => {
      const seen = await recorded('compact-recorder');
      return ids.every((id) => seen.some((event) => event.id === id)) && seen;
    }, { timeoutMs: 60_000 });
    expect(Object.fromEntries(ids.map((id) => [id, events.find((event) => event.id === id)!.type]))).toEqual({ [ids[0]!]: 'MODIFIED', [ids[1]!]: 'DELETED', [ids[2]!]: 'ADDED' });
    // It got there through 410 Gone and a relist, not by replaying a history etcd still had.
    const metrics = await (await fetch(`http://127.0.0.1:${restarted.env.PORT}/metrics`)).text();
    expect(metrics).toMatch(/kublambda_watcher_relists_total\{[^}]*reason="gone"[^}]*\} [1-9]/);
  }, 180_000);
});

/** Compacts etcd's history up to its current revision, through etcd's own API (the gRPC gateway). */
async function compactEtcd(): Promise<void> {
  const etcd = process.env.KUBLAMBDA_ETCD_URL;
  if (!etcd) throw new Error('KUBLAMBDA_ETCD_URL is not set: the Jest global setup exports it');
  const range = await fetch(`${etcd}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64'), limit: 1 }) });
  const revision = ((await range.json()) as { header: { revision: string } }).header.revision;
  const compacted = await fetch(`${etcd}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
  if (!compacted.ok) throw new Error(`etcd compaction to ${revision}: ${compacted.status} ${await compacted.text()}`);
}

describe('delivery failures', () => {
  it('retries a lambda failing for a while until it takes the event, and dead-letters one failing for good', async () => {
    const watcher = await deployRecorder('failing-recorder', [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=failing' }], { DELIVERY_ATTEMPTS: '4' });
    const namespace = platform.namespace;
    const flaky = await core.createNamespacedConfigMap({ namespace, body: configMap('flaky', { app: 'failing' }, { fail: '2' }) });
    const broken = await core.createNamespacedConfigMap({ namespace, body: configMap('broken', { app: 'failing' }, { fail: 'always' }) });

    const flakyId = `${flaky.metadata!.uid}/${flaky.metadata!.resourceVersion}`;
    await waitUntil('the flaky event to be delivered after retries', async () => (await recorded('failing-recorder')).some((event) => event.id === flakyId), { timeoutMs: 60_000 });
    const keys = watcherKeys({ namespace, name: 'failing-recorder' });
    const deadLetters = await waitUntil('the broken event in the dead-letter list', async () => {
      const entries = (await admin.lrange(keys.deadLetters, 0, -1)).map((entry) => JSON.parse(entry) as DeadLetter);
      return entries.length > 0 && entries;
    }, { timeoutMs: 60_000 });
    expect(deadLetters).toEqual([
      expect.objectContaining({ id: `${broken.metadata!.uid}/${broken.metadata!.resourceVersion}`, type: 'io.kublambda.resource.added', subject: `${namespace}/broken`, attempts: 4, lastError: expect.stringContaining('500') }),
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${watcher.env.PORT}/metrics`)).text();
    expect(metrics).toMatch(/kublambda_watcher_events_dead_lettered_total\{[^}]*\} 1\b/);
    expect(metrics).toMatch(/kublambda_watcher_delivery_retries_total\{[^}]*\} [1-9]/);
  }, 180_000);
});
