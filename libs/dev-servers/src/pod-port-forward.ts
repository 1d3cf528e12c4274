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
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const body = desiredPortForward(options);
  const where = { group: KWOK_GROUP, version: KWOK_VERSION, plural: PORT_FORWARD_PLURAL, namespace: options.namespace };
  try {
    await api.createNamespacedCustomObject({ ...where, body });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw new Error(`creating the PortForward for pod ${options.namespace}/${options.pod}`, { cause: error });
    const current = (await api.getNamespacedCustomObject({ ...where, name: options.pod })) as k8s.KubernetesObject;
    await api.replaceNamespacedCustomObject({ ...where, name: options.pod, body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata!.resourceVersion } } });
  }
  return {
    delete: async () => {
      try {
        await api.deleteNamespacedCustomObject({ ...where, name: options.pod });
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error;
      }
    },
  };
}
