// The runner pool as the Kubernetes API shows it: the Service's EndpointSlices (watched), the
// Deployment's scale subresource, and Events on the Deployment.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '@kublambda/logging';
import { watchResource, type ResourceWatch } from '@kublambda/reconcile-runtime';
import { SERVICE_NAME_LABEL } from './ready-endpoints.ts';
import type { RunnerScale, ScaleEventReason } from './scaling-loop.ts';

export interface RunnerPoolRef {
  namespace: string;
  deployment: string;
  service: string;
}

/** The runner Service's EndpointSlices, kept current by a watch (restarted on errors, relisted now and then). */
export function watchRunnerEndpointSlices(kubeConfig: k8s.KubeConfig, pool: RunnerPoolRef, logger: Logger, relistIntervalMs: number): ResourceWatch<k8s.V1EndpointSlice> {
  const api = kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
  const labelSelector = `${SERVICE_NAME_LABEL}=${pool.service}`;
  return watchResource<k8s.V1EndpointSlice>({
    kubeConfig,
    path: `/apis/discovery.k8s.io/v1/namespaces/${pool.namespace}/endpointslices`,
    labelSelector,
    list: () => api.listNamespacedEndpointSlice({ namespace: pool.namespace, labelSelector }),
    // The loop reads the cache at every round; nothing to do per change.
    onObject: () => undefined,
    logger,
    relistIntervalMs,
  });
}

/** The runner pods matching labelSelector, kept current by a watch (RUNNER_DISCOVERY=pods). */
export function watchRunnerPods(kubeConfig: k8s.KubeConfig, pool: RunnerPoolRef, labelSelector: string, logger: Logger, relistIntervalMs: number): ResourceWatch<k8s.V1Pod> {
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return watchResource<k8s.V1Pod>({
    kubeConfig,
    path: `/api/v1/namespaces/${pool.namespace}/pods`,
    labelSelector,
    list: () => api.listNamespacedPod({ namespace: pool.namespace, labelSelector }),
    onObject: () => undefined,
    logger,
    relistIntervalMs,
  });
}

/** The Deployment's scale subresource: only spec.replicas is ever written, never the Deployment. */
export function kubeRunnerScale(kubeConfig: k8s.KubeConfig, pool: RunnerPoolRef): RunnerScale & { lastRead(): k8s.V1Scale | undefined } {
  const api = kubeConfig.makeApiClient(k8s.AppsV1Api);
  let last: k8s.V1Scale | undefined;
  return {
    read: async () => {
      last = await api.readNamespacedDeploymentScale({ name: pool.deployment, namespace: pool.namespace });
      return { replicas: last.spec?.replicas ?? 0, resourceVersion: last.metadata?.resourceVersion };
    },
    write: async (replicas, resourceVersion) => {
      last = await api.replaceNamespacedDeploymentScale({
        name: pool.deployment,
        namespace: pool.namespace,
        body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: pool.deployment, namespace: pool.namespace, resourceVersion }, spec: { replicas } },
      });
    },
    lastRead: () => last,
  };
}

/** Events on the runner Deployment, named as client-go names them (the object's name and a unique hex suffix). */
export function kubeScaleEvents(kubeConfig: k8s.KubeConfig, pool: RunnerPoolRef, reportingInstance: string, deploymentUid: () => string | undefined) {
  const api = kubeConfig.makeApiClient(k8s.EventsV1Api);
  let serial = 0;
  return async (reason: ScaleEventReason, note: string): Promise<void> => {
    await api.createNamespacedEvent({
      namespace: pool.namespace,
      body: {
        metadata: { name: `${pool.deployment}.${(Date.now() * 1000 + (serial++ % 1000)).toString(16)}`, namespace: pool.namespace },
        eventTime: new k8s.V1MicroTime(),
        reportingController: 'kublambda.io/autoscaler',
        reportingInstance,
        action: 'Scale',
        reason,
        note: note.slice(0, 1024),
        type: 'Normal',
        regarding: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: pool.namespace, name: pool.deployment, uid: deploymentUid() },
      },
    });
  };
}
