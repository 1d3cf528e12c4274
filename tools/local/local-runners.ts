// The local platform's runner pool: the kublambda-runner Deployment, scaled by the autoscaler
// as in a cluster, with a runner process for each of its pods (no kubelet here: kwok makes the
// pods Ready with loopback IPs, and servePodsLocally starts a runner on each pod's IP and port).
// Each pod's port-forward leads to its runner and its log is that runner's output, so the CLI
// reaches every replica through the API server. One local port stands in for the ingress and the
// runner Service: it spreads connections over the Ready runners, as kube-proxy would.
import net from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { labelSelector, RUNNER_HTTP_PORT_NAME, RUNNER_POD_LABELS } from '@kublambda/crd-types';
import { forwardPodPort, freePort, servePodLogs, servePodsLocally, startPlatformService, type PodProcesses } from '@kublambda/dev-servers';

export const RUNNER_DEPLOYMENT = 'kublambda-runner';
const RUNNER_CONTAINER = 'runner';

export interface LocalRunnerPoolOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** Each runner's environment, but for HOST and PORT (its pod's). */
  env: Record<string, string>;
  logDir: string;
  /** The ingress: the one local port clients use. */
  ingress: { host: string; port: number };
}

export interface LocalRunnerPool {
  pods: PodProcesses;
  stop(): Promise<void>;
}

/** The Deployment the autoscaler scales: its replicas are kept across restarts, its template says which port the runners use. */
export function desiredRunnerDeployment(namespace: string, port: number, replicas?: number): k8s.V1Deployment {
  const labels = { ...RUNNER_POD_LABELS };
  return {
    metadata: { name: RUNNER_DEPLOYMENT, namespace, labels },
    spec: {
      ...(replicas === undefined ? {} : { replicas }),
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: RUNNER_CONTAINER, image: 'example.invalid/kublambda-runner:local', ports: [{ name: RUNNER_HTTP_PORT_NAME, containerPort: port }] }] },
      },
    },
  };
}

export async function startLocalRunnerPool(options: LocalRunnerPoolOptions): Promise<LocalRunnerPool> {
  const apps = options.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const { namespace } = options;
  // One port for every runner, each on its own pod IP; a free one, as another cluster on this
  // machine may hand out the same pod IPs.
  const port = await freePort();
  try {
    await apps.createNamespacedDeployment({ namespace, body: desiredRunnerDeployment(namespace, port, 1) });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw new Error(`creating Deployment ${namespace}/${RUNNER_DEPLOYMENT}`, { cause: error });
    // Kept from an earlier start: the replicas stay the autoscaler's, the new port rolls the pods.
    const current = await apps.readNamespacedDeployment({ name: RUNNER_DEPLOYMENT, namespace });
    await apps.replaceNamespacedDeployment({ name: RUNNER_DEPLOYMENT, namespace, body: { ...desiredRunnerDeployment(namespace, port, current.spec?.replicas ?? 1), metadata: { ...current.metadata, labels: { ...RUNNER_POD_LABELS } } } });
  }

  const pods = servePodsLocally({
    kubeConfig: options.kubeConfig,
    namespace,
    labelSelector: labelSelector(RUNNER_POD_LABELS),
    start: async ({ name, ip }) => {
      const runner = await startPlatformService('runner', { ...options.env, HOST: ip, PORT: String(port) }, { logDir: options.logDir, name, criLog: true });
      await forwardPodPort(options.kubeConfig, { namespace, pod: name, ports: [port], target: { address: ip, port } });
      await servePodLogs(options.kubeConfig, { namespace, pod: name, containers: [RUNNER_CONTAINER], logsFile: runner.criLogFile! });
      return runner;
    },
  });

  let next = 0;
  const open = new Set<net.Socket>();
  const ingress = net.createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    const backends = [...pods.served.values()];
    if (backends.length === 0) {
      client.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":"NoRunner","message":"no runner is Ready yet"}');
      return;
    }
    const backend = backends[next++ % backends.length]!;
    const upstream = net.connect(port, backend.ip);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    ingress.once('error', reject);
    ingress.listen(options.ingress.port, options.ingress.host, () => resolve());
  });

  return {
    pods,
    stop: async () => {
      const closed = new Promise<void>((resolve) => ingress.close(() => resolve()));
      // Keep-alive clients would hold the port open: their connections end with the platform.
      for (const socket of open) socket.destroy();
      await closed;
      await pods.stop();
    },
  };
}
