// Watch-trigger benchmark, one run, everything on 127.0.0.1, stops by itself. A control plane
// of its own (with kwok), Redis, S3, api-controller, builder and runner as local processes, and
// the lambda's event-watcher run from the Deployment api-controller made. The lambda records
// when it was invoked for each ConfigMap.
//   L  latency: ConfigMaps created one at a time; from just before the create call to the
//      lambda's invocation. Baseline in the same run: the same creates seen by a plain watch
//      of this process (client-node), which is what any watcher's latency starts from.
//   T  throughput: 1,000 ConfigMaps created with 16 calls in flight; delivered events per
//      second from the first create to the last invocation, against the API server's own rate
//      of creates in the same run.
//   B  backlog: the watcher stopped, 1,000 more ConfigMaps created, the watcher started again;
//      delivered events per second from its start to the last invocation (what the watcher,
//      the runner and the lambda can take, not bound by how fast the API server takes writes).
//   npm run bench:watch [-- --latency 200 --changes 1000]
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { freePort, startControlPlane, startDeploymentLocally, waitUntil } from '@kublambda/dev-servers';
import { isReady, startLambdaPlatform } from '../../apps/api-controller/src/lambda-platform.testing.ts';

const { values } = parseArgs({ options: { latency: { type: 'string', default: '200' }, changes: { type: 'string', default: '1000' } } });
const latencyCount = Number(values.latency);
const changeCount = Number(values.changes);

const recorder = `
import { readResourceEvent } from '@kublambda/lambda-api';
export default async (request: Request, context) => {
  const seen = context.state.table('seen');
  if (request.method === 'GET') {
    const all = {};
    let cursor;
    do {
      const page = await seen.list({ cursor, limit: 1000 });
      for (const entry of page.entries) all[entry.key] = entry.value;
      cursor = page.cursor;
    } while (cursor);
    return Response.json(all);
  }
  const invokedAt = Date.now();
  const event = await readResourceEvent(request);
  await seen.put(event.object.metadata.name, invokedAt);
  return new Response('ok');
};
`;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
};

const controlPlane = await startControlPlane({ kwok: true });
process.env.KUBECONFIG = controlPlane.kubeconfigPath;
const stops: Array<() => Promise<void>> = [controlPlane.stop];
try {
  const platform = await startLambdaPlatform('bench-watch');
  stops.push(platform.stop);
  await platform.startBuilder();
  await platform.startController();
  const runner = await platform.startRunner();
  await platform.apply('recorder', { source: { inline: recorder }, stateTables: ['seen'], triggers: { watch: [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'bench=watch', events: ['ADDED'] }] } });
  await platform.waitFor('recorder', 'Ready', isReady, 120_000);
  let watcher: Awaited<ReturnType<typeof startDeploymentLocally>> | undefined;
  const startWatcher = async () => {
    watcher = await startDeploymentLocally({
      kubeConfig: platform.kubeConfig,
      namespace: platform.namespace,
      name: 'kublambda-watch-recorder',
      app: 'event-watcher',
      env: { RUNNER_URL: runner, HOST: '127.0.0.1', PORT: String(await freePort()) },
      logDir: platform.logDir,
      processName: `watcher-${Date.now()}`,
    });
  };
  await startWatcher();
  stops.push(async () => watcher?.process.stop());

  const core = platform.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const namespace = platform.namespace;
  const seen = async () => (await (await fetch(`${runner}/${namespace}/recorder`)).json()) as Record<string, number>;
  // The baseline: this process's own watch of the same ConfigMaps.
  const watchedAt = new Map<string, number>();
  const rawWatch = await new k8s.Watch(platform.kubeConfig).watch(`/api/v1/namespaces/${namespace}/configmaps`, { labelSelector: 'bench=watch' }, (type, object: k8s.V1ConfigMap) => {
    if (type === 'ADDED') watchedAt.set(object.metadata!.name!, Date.now());
  }, () => {});
  const create = (name: string) => core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels: { bench: 'watch' } }, data: { n: name } } });

  // Warm-up: the first delivery starts the lambda's worker.
  await create('warm-up');
  await waitUntil('the warm-up change to be delivered', async () => 'warm-up' in (await seen()), { timeoutMs: 60_000 });

  const startedAt = new Map<string, number>();
  for (let i = 0; i < latencyCount; i++) {
    const name = `latency-${i}`;
    startedAt.set(name, Date.now());
    await create(name);
    // One change at a time: the next goes once this one has been seen by the plain watch.
    await waitUntil(`${name} to be watched`, () => watchedAt.has(name), { timeoutMs: 30_000, intervalMs: 1 });
  }
  const invoked = await waitUntil('every latency change to be delivered', async () => {
    const all = await seen();
    return [...startedAt.keys()].every((name) => name in all) && all;
  }, { timeoutMs: 120_000, intervalMs: 200 });
  const latencies = [...startedAt].map(([name, at]) => invoked[name]! - at);
  const watchLatencies = [...startedAt].map(([name, at]) => watchedAt.get(name)! - at);

  const names = Array.from({ length: changeCount }, (_, i) => `throughput-${i}`);
  const throughputStart = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < names.length) await create(names[next++]!);
  }));
  const createsDone = Date.now();
  const delivered = await waitUntil('every throughput change to be delivered', async () => {
    const all = await seen();
    return names.every((name) => name in all) && all;
  }, { timeoutMs: 300_000, intervalMs: 500 });
  const lastInvocation = Math.max(...names.map((name) => delivered[name]!));
  rawWatch.abort();

  await watcher!.process.stop();
  const backlog = Array.from({ length: changeCount }, (_, i) => `backlog-${i}`);
  next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < backlog.length) await create(backlog[next++]!);
  }));
  const backlogStart = Date.now();
  await startWatcher();
  const drained = await waitUntil('every backlog change to be delivered', async () => {
    const all = await seen();
    return backlog.every((name) => name in all) && all;
  }, { timeoutMs: 300_000, intervalMs: 500 });
  const backlogPerSecond = changeCount / ((Math.max(...backlog.map((name) => drained[name]!)) - backlogStart) / 1000);

  const l = summary(latencies);
  const w = summary(watchLatencies);
  const eventsPerSecond = changeCount / ((lastInvocation - throughputStart) / 1000);
  const createsPerSecond = changeCount / ((createsDone - throughputStart) / 1000);
  console.log(`
L  change -> lambda invoked, ${latencyCount} changes one at a time:  p50 ${l.p50} ms  p90 ${l.p90} ms  p99 ${l.p99} ms
   baseline, change -> a plain watch sees it:           p50 ${w.p50} ms  p90 ${w.p90} ms  p99 ${w.p99} ms
   added by watcher + delivery + runner (p50):          ${l.p50 - w.p50} ms
T  ${changeCount} changes, 16 creates in flight:  ${eventsPerSecond.toFixed(0)} delivered events/s, API server ${createsPerSecond.toFixed(0)} creates/s  (ratio ${(eventsPerSecond / createsPerSecond).toFixed(2)})
B  ${changeCount} changes waiting for a restarted watcher:  ${backlogPerSecond.toFixed(0)} delivered events/s (from the process's start, its boot included)`);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
}
