// kwok's pod-complete stage on the shared test control plane (tools/servers/kwok/stages): a Job's
// pod ends with the exit code and termination message its annotations name, as if its container
// had run; without them it succeeds with exit code 0 and no message, as with kwok's own stage.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, testKubeConfig } from './test-namespace.ts';
import { waitUntil } from './wait-until.ts';

let namespace: { name: string; delete(): Promise<void> };
let batch: k8s.BatchV1Api;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  const kubeConfig = testKubeConfig();
  batch = kubeConfig.makeApiClient(k8s.BatchV1Api);
  core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  namespace = await createTestNamespace(kubeConfig, 'kwok-stages');
  await waitUntil('the default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: namespace.name }).catch(() => undefined), { timeoutMs: 60_000 });
});

afterAll(async () => {
  await namespace?.delete();
});

/** Runs a one-pod Job and returns its pod once kwok has finished it. */
async function finishedPod(name: string, annotations: Record<string, string> | undefined): Promise<k8s.V1Pod> {
  await batch.createNamespacedJob({
    namespace: namespace.name,
    body: {
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: {
          ...(annotations ? { metadata: { annotations } } : {}),
          spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'example.invalid/none:v1' }] },
        },
      },
    },
  });
  return waitUntil(
    `the pod of Job ${name} to finish`,
    async () => {
      const pods = await core.listNamespacedPod({ namespace: namespace.name, labelSelector: `batch.kubernetes.io/job-name=${name}` });
      return pods.items.find((pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed');
    },
    { timeoutMs: 60_000 },
  );
}

describe('kwok pod-complete stage', () => {
  it.each<[string, Record<string, string> | undefined, string, Partial<k8s.V1ContainerStateTerminated>]>([
    ['no annotations at all', undefined, 'Succeeded', { exitCode: 0, reason: 'Completed' }],
    ['other annotations only', { 'example.com/note': 'x' }, 'Succeeded', { exitCode: 0, reason: 'Completed' }],
    ['a termination message', { 'kwok.kublambda.io/termination-message': 'sha256:abc' }, 'Succeeded', { exitCode: 0, reason: 'Completed', message: 'sha256:abc' }],
    [
      'an exit code and a message',
      { 'kwok.kublambda.io/exit-code': '3', 'kwok.kublambda.io/termination-message': 'error: "quoted"\nsecond line' },
      'Failed',
      { exitCode: 3, reason: 'Error', message: 'error: "quoted"\nsecond line' },
    ],
  ])('%s', async (_, annotations, phase, terminated) => {
    const pod = await finishedPod(`job-${Math.random().toString(36).slice(2, 8)}`, annotations);
    expect(pod.status?.phase).toBe(phase);
    const state = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(state).toMatchObject(terminated);
    if (!terminated.message) expect(state?.message).toBeUndefined();
  });
});
