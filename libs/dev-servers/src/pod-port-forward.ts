import * as k8s from '@kubernetes/client-node';

// No kubelet runs here, so nothing listens in a pod. kwok's server stands in for the node's
// kubelet (startControlPlane with kwok), and a PortForward object tells it where a pod's port
// leads: `kubectl port-forward` to the pod, through the API server, then reaches a local process.

export const KWOK_GROUP = 'kwok.x-k8s.io';
export const KWOK_VERSION = 'v1alpha1';
export const PORT_FORWARD_PLURAL = 'portforwards';

export interface PodPortForwardOptions {
  namespace: string;
  /** The pod; kwok looks PortForward objects up by the pod's name and namespace. */
  pod: string;
  /** The pod's container ports that lead to the target. */
  ports: number[];
  /** Where they lead: a local process, on loopback (127.0.0.0/8) only. */
  target: { address: string; port: number };
}

export interface PodPortForward {
  delete(): Promise<void>;
}

/** The PortForward object (named after the pod, in its namespace) for the options. */
export function desiredPortForward(options: PodPortForwardOptions): k8s.KubernetesObject & { spec: unknown } {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(options.target.address)) {
    throw new Error(`a port-forward target must be on loopback (127.0.0.0/8), not "${options.target.address}"`);
  }
  return {
    apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`,
    kind: 'PortForward',
    metadata: { name: options.pod, namespace: options.namespace },
    spec: { forwards: [{ ports: options.ports, target: { address: options.target.address, port: options.target.port } }] },
  };
}

/**
 * Creates (or replaces) kwok's PortForward for the pod. kwok picks it up through its watch, so
 * the first port-forward may come a moment later; callers wait for one to work.
 */
export async function forwardPodPort(kubeConfig: k8s.KubeConfig, options: PodPortForwardOptions): Promise<PodPortForward> {
  return applyKwokPodObject(kubeConfig, PORT_FORWARD_PLURAL, desiredPortForward(options));
}

export const LOGS_PLURAL = 'logs';

export interface PodLogsOptions {
  namespace: string;
  pod: string;
  containers: string[];
  /** A file in the CRI log format (ManagedProcess.criLogFile) that kwok serves as those containers' log, following it. */
  logsFile: string;
}

/** kwok's Logs object for the pod: `kubectl logs` (pods/log through the API server) then reads the local file. */
export function desiredPodLogs(options: PodLogsOptions): k8s.KubernetesObject & { spec: unknown } {
  return {
    apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`,
    kind: 'Logs',
    metadata: { name: options.pod, namespace: options.namespace },
    spec: { logs: [{ containers: options.containers, logsFile: options.logsFile, follow: true }] },
  };
}

export async function servePodLogs(kubeConfig: k8s.KubeConfig, options: PodLogsOptions): Promise<PodPortForward> {
  return applyKwokPodObject(kubeConfig, LOGS_PLURAL, desiredPodLogs(options));
}

/** Creates or replaces a kwok object named after its pod; the handle deletes it. */
async function applyKwokPodObject(kubeConfig: k8s.KubeConfig, plural: string, body: k8s.KubernetesObject): Promise<PodPortForward> {
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const { name, namespace } = body.metadata as { name: string; namespace: string };
  const where = { group: KWOK_GROUP, version: KWOK_VERSION, plural, namespace };
  try {
    await api.createNamespacedCustomObject({ ...where, body });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw new Error(`creating the kwok ${body.kind} for pod ${namespace}/${name}`, { cause: error });
    const current = (await api.getNamespacedCustomObject({ ...where, name })) as k8s.KubernetesObject;
    await api.replaceNamespacedCustomObject({ ...where, name, body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata!.resourceVersion } } });
  }
  return {
    delete: async () => {
      try {
        await api.deleteNamespacedCustomObject({ ...where, name });
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error;
      }
    },
  };
}
