import * as k8s from '@kubernetes/client-node';
import { forwardPodPort, type PodPortForward } from './pod-port-forward.ts';
import { waitUntil } from './wait-until.ts';

// A Deployment that stands for a platform service running as a local process: kwok makes its
// pod Ready (nothing runs in it), and a PortForward makes the pod's port lead to the local
// process, so clients find the pod by its labels and reach it through the API server's
// port-forward, as they would in a cluster.

export interface PodStandInOptions {
  namespace: string;
  name: string;
  /** The pod's labels, which clients select it by (also the Deployment's selector). */
  labels: Record<string, string>;
  /** The container port clients port-forward to. */
  port: { name: string; containerPort: number };
  /** The local process the port leads to (loopback). */
  target: { address: string; port: number };
  timeoutMs?: number;
}

export interface PodStandIn {
  /** The Ready pod the PortForward is for. */
  pod: string;
  delete(): Promise<void>;
}

export async function startPodStandIn(kubeConfig: k8s.KubeConfig, options: PodStandInOptions): Promise<PodStandIn> {
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const { namespace, name, labels } = options;
  const body: k8s.V1Deployment = {
    metadata: { name, namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name, image: `example.invalid/${name}:local`, ports: [{ name: options.port.name, containerPort: options.port.containerPort }] }] },
      },
    },
  };
  try {
    await apps.createNamespacedDeployment({ namespace, body });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw new Error(`creating Deployment ${namespace}/${name}`, { cause: error });
    await apps.replaceNamespacedDeployment({ namespace, name, body });
  }
  const selector = Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(',');
  const pod = await waitUntil(
    `a Ready pod of Deployment ${namespace}/${name}`,
    async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
      return pods.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 250 },
  );
  let forward: PodPortForward | undefined;
  try {
    forward = await forwardPodPort(kubeConfig, { namespace, pod, ports: [options.port.containerPort], target: options.target });
  } catch (error) {
    await apps.deleteNamespacedDeployment({ namespace, name }).catch(() => {});
    throw error;
  }
  return {
    pod,
    delete: async () => {
      await forward.delete();
      await apps.deleteNamespacedDeployment({ namespace, name }).catch((error: unknown) => {
        if ((error as { code?: number }).code !== 404) throw error;
      });
    },
  };
}
