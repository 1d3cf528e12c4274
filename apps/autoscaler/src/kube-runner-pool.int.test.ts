// The autoscaler's Kubernetes side against the real API server: the runner Service's
// EndpointSlices as the watch sees them, the scale subresource and the Events. Nothing here
// connects to an endpoint: the API server refuses loopback addresses in EndpointSlices, so the
// slices carry TEST-NET addresses (192.0.2.0/24) that are only read, never contacted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, testKubeConfig, waitUntil } from '@kublambda/dev-servers';
import { createLogger } from '@kublambda/logging';
import { kubeRunnerScale, kubeScaleEvents, watchRunnerEndpointSlices } from './kube-runner-pool.ts';
import { readyEndpoints, SERVICE_NAME_LABEL } from './ready-endpoints.ts';

const kubeConfig = testKubeConfig();
const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
const discovery = kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
const logger = createLogger('autoscaler-test', 'error');
let namespace: { name: string; delete(): Promise<void> };
let pool: { namespace: string; deployment: string; service: string };

beforeAll(async () => {
  namespace = await createTestNamespace(kubeConfig, 'runner-pool');
  pool = { namespace: namespace.name, deployment: 'kublambda-runner', service: 'kublambda-runner' };
  const labels = { app: 'kublambda-runner' };
  await apps.createNamespacedDeployment({
    namespace: namespace.name,
    body: {
      metadata: { name: pool.deployment, labels },
      spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'runner', image: 'kublambda/runner:test' }] } } },
    },
  });
});
afterAll(async () => {
  await namespace?.delete();
});

describe('the runner pool in Kubernetes', () => {
  it('watches the ready endpoints of the Service\'s EndpointSlices, and only that Service\'s', async () => {
    const slice = (name: string, service: string, endpoints: k8s.V1Endpoint[]) =>
      discovery.createNamespacedEndpointSlice({
        namespace: namespace.name,
        body: { metadata: { name, labels: { [SERVICE_NAME_LABEL]: service } }, addressType: 'IPv4', endpoints, ports: [{ name: 'http', port: 8080 }] },
      });
    const watch = watchRunnerEndpointSlices(kubeConfig, pool, logger, 60_000);
    try {
      await watch.synced;
      await slice('kublambda-runner-a', 'kublambda-runner', [
        { addresses: ['192.0.2.10'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'runner-1' } },
        { addresses: ['192.0.2.11'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'runner-2' } },
      ]);
      await slice('other-a', 'other', [{ addresses: ['192.0.2.20'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'other-1' } }]);
      await slice('kublambda-runner-b', 'kublambda-runner', [{ addresses: ['192.0.2.12'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'runner-3' } }]);
      const endpoints = await waitUntil('both runner slices in the watch', () => {
        const current = readyEndpoints(watch.cache.list(), 'http');
        return current.length === 2 && current;
      });
      expect(endpoints).toEqual([
        { pod: 'runner-1', address: '192.0.2.10', port: 8080 },
        { pod: 'runner-3', address: '192.0.2.12', port: 8080 },
      ]);
      await discovery.deleteNamespacedEndpointSlice({ name: 'kublambda-runner-b', namespace: namespace.name });
      await waitUntil('the deleted slice to leave the watch', () => readyEndpoints(watch.cache.list(), 'http').length === 1);
    } finally {
      await watch.stop();
    }
  });

  it('changes only spec.replicas through the scale subresource, refusing a stale write, and records Events on the Deployment', async () => {
    const scale = kubeRunnerScale(kubeConfig, pool);
    const before = await apps.readNamespacedDeployment({ name: pool.deployment, namespace: namespace.name });
    const current = await scale.read();
    expect(current.replicas).toBe(1);
    await scale.write(3, current.resourceVersion);
    // Someone else's change meanwhile: the write with the old version is a conflict.
    await expect(scale.write(2, current.resourceVersion)).rejects.toMatchObject({ code: 409 });
    const after = await apps.readNamespacedDeployment({ name: pool.deployment, namespace: namespace.name });
    expect(after.spec?.replicas).toBe(3);
    expect({ ...after.spec, replicas: 1 }).toEqual(before.spec);

    const record = kubeScaleEvents(kubeConfig, pool, 'autoscaler-0', () => scale.lastRead()?.metadata?.uid);
    await record('Panic', 'Scaled from 1 to 3 replicas (Panic)');
    const events = await kubeConfig.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: namespace.name });
    expect(events.items.filter((event) => event.reportingController === 'kublambda.io/autoscaler').map((event) => ({ reason: event.reason, note: event.note, regarding: event.regarding?.name, uid: event.regarding?.uid, controller: event.reportingController }))).toEqual([
      { reason: 'Panic', note: 'Scaled from 1 to 3 replicas (Panic)', regarding: pool.deployment, uid: before.metadata?.uid, controller: 'kublambda.io/autoscaler' },
    ]);
  });
});
