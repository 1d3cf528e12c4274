import type * as k8s from '@kubernetes/client-node';

/** A Ready runner pod as its Service's EndpointSlices list it. */
export interface RunnerEndpoint {
  /** The pod's name (the address when the endpoint names no pod). */
  pod: string;
  address: string;
  port: number;
}

/** The label the EndpointSlice controller puts on the slices of a Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * The Ready endpoints of a Service's EndpointSlices with the port named portName (or the only
 * port of a slice that has one), one per pod (a pod can be in two slices while they are
 * rewritten), sorted by pod. Ready unset counts as ready, as the API defines it; a terminating
 * pod is not ready. Endpoints not Ready are neither scraped nor counted.
 */
export function readyEndpoints(slices: readonly k8s.V1EndpointSlice[], portName: string): RunnerEndpoint[] {
  const byPod = new Map<string, RunnerEndpoint>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const ports = slice.ports ?? [];
    const port = ports.find((candidate) => candidate.name === portName) ?? (ports.length === 1 ? ports[0] : undefined);
    if (port?.port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      const address = endpoint.addresses[0];
      if (!address) continue;
      const pod = endpoint.targetRef?.kind === 'Pod' && endpoint.targetRef.name ? endpoint.targetRef.name : address;
      if (!byPod.has(pod)) byPod.set(pod, { pod, address, port: port.port });
    }
  }
  return [...byPod.values()].sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
}

/**
 * The same from the runner pods themselves (RUNNER_DISCOVERY=pods), by the rule the EndpointSlice
 * controller applies: a pod IP, not terminating, the Ready condition True; the port is the
 * container port named portName. For clusters whose EndpointSlices cannot carry the pod IPs
 * (the API server refuses loopback addresses in them, which is what kwok's pods have in tests).
 */
export function readyPodEndpoints(pods: readonly k8s.V1Pod[], portName: string): RunnerEndpoint[] {
  const endpoints: RunnerEndpoint[] = [];
  for (const pod of pods) {
    const address = pod.status?.podIP;
    const ready = pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True');
    const port = pod.spec?.containers.flatMap((container) => container.ports ?? []).find((candidate) => candidate.name === portName)?.containerPort;
    if (!address || !ready || port === undefined || pod.metadata?.deletionTimestamp) continue;
    endpoints.push({ pod: pod.metadata?.name ?? address, address, port });
  }
  return endpoints.sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
}

/** Where a runner's metrics are: its /metrics on the HTTP port, IPv6 addresses in brackets. */
export function metricsUrl(endpoint: RunnerEndpoint): string {
  const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
  return `http://${host}:${endpoint.port}/metrics`;
}
