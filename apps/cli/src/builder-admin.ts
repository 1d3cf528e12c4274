// The builder's admin API, reached as `kubectl port-forward` reaches a pod: through the
// Kubernetes API server with the user's kubeconfig (pods/portforward, one WebSocket per
// connection), never with Redis addresses or credentials on the user's machine.
import http from 'node:http';
import { Duplex, PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import type { BuildFilter, BuildRecord } from '@kublambda/build-queue';
import { describeError } from '@kublambda/reconcile-runtime';

export const BUILDER_POD_LABEL = 'app.kubernetes.io/name=kublambda-builder';
export const ADMIN_PORT_NAME = 'admin';

/** A Ready, running builder pod with a container port named admin; the first by name, so repeated runs agree. */
export function chooseBuilderPod(pods: k8s.V1Pod[]): { name: string; port: number } | undefined {
  const candidates = pods
    .filter((pod) => !pod.metadata?.deletionTimestamp && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .flatMap((pod) => {
      const port = pod.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === ADMIN_PORT_NAME)?.containerPort;
      return port ? [{ name: pod.metadata!.name!, port }] : [];
    });
  return candidates.sort((a, b) => a.name.localeCompare(b.name))[0];
}

export function noBuilderPodMessage(namespace: string): string {
  return `no Ready pod labelled ${BUILDER_POD_LABEL} with a container port named "${ADMIN_PORT_NAME}" in ${namespace}: is the builder running with ADMIN_PORT set?`;
}

export function forbiddenMessage(verbs: string[], resource: string, namespace: string, detail: string): string {
  return `forbidden: kublambda builds needs ${verbs.map((verb) => `"${verb}"`).join(' and ')} on ${resource} in ${namespace} (Kubernetes RBAC; see docs/images.md, "Inspecting builds"): ${detail}`;
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown; statusCode?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** A refusal of the builder's admin API (its JSON error), with the HTTP status. */
export class AdminApiError extends Error {
  override readonly name = 'AdminApiError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface BuilderAdmin {
  list(filter: BuildFilter): Promise<BuildRecord[]>;
  retry(id: string): Promise<BuildRecord>;
}

/** The admin API of a builder pod in the platform namespace, each request over a port-forward of its own. */
export function builderAdmin(kubeConfig: k8s.KubeConfig, platformNamespace: string): BuilderAdmin {
  let target: Promise<{ name: string; port: number }> | undefined;
  const pod = () => (target ??= findBuilderPod(kubeConfig, platformNamespace));
  const call = async (method: string, path: string) => {
    const { name, port } = await pod();
    return requestOverPortForward(kubeConfig, platformNamespace, name, port, method, path);
  };
  return {
    list: async (filter) => {
      const query = new URLSearchParams(Object.entries(filter).filter((entry): entry is [string, string] => entry[1] !== undefined));
      return ((await call('GET', `/api/builds?${query}`)) as { builds: BuildRecord[] }).builds;
    },
    retry: async (id) => ((await call('POST', `/api/builds/${encodeURIComponent(id)}/retry`)) as { build: BuildRecord }).build,
  };
}

async function findBuilderPod(kubeConfig: k8s.KubeConfig, namespace: string): Promise<{ name: string; port: number }> {
  let pods: k8s.V1PodList;
  try {
    pods = await kubeConfig.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace, labelSelector: BUILDER_POD_LABEL });
  } catch (error) {
    if (statusCode(error) === 403) throw new Error(forbiddenMessage(['list'], 'pods', namespace, describeError(error)));
    throw new Error(`listing the builder pods in ${namespace} at ${kubeConfig.getCurrentCluster()?.server ?? 'the API server'}`, { cause: error });
  }
  const chosen = chooseBuilderPod(pods.items);
  if (!chosen) throw new Error(noBuilderPodMessage(namespace));
  return chosen;
}

/**
 * One HTTP request to the pod's port through the API server's pods/portforward (WebSocket,
 * channel protocol v4: a data and an error channel per port), answered as parsed JSON.
 */
async function requestOverPortForward(kubeConfig: k8s.KubeConfig, namespace: string, pod: string, port: number, method: string, path: string): Promise<unknown> {
  const toPod = new PassThrough();
  const fromPod = new PassThrough();
  let forwardError = '';
  const errors = new Writable({
    write(chunk, _encoding, done) {
      forwardError += String(chunk);
      done();
    },
  });
  let ws: { close(): void; on(event: 'close', listener: () => void): void };
  try {
    ws = (await new k8s.PortForward(kubeConfig, false).portForward(namespace, pod, [port], fromPod, errors, toPod)) as unknown as typeof ws;
  } catch (error) {
    const detail = (error as { message?: string }).message ?? String(error);
    // A WebSocket port-forward is a GET that the API server also authorizes as "create" (1.35+).
    if (/\b403\b/.test(detail)) throw new Error(forbiddenMessage(['get', 'create'], 'pods/portforward', namespace, `port-forward to pod ${pod} was refused (${detail})`));
    throw new Error(`port-forward to pod ${namespace}/${pod} port ${port}: ${detail}`);
  }
  ws.on('close', () => fromPod.end());
  // Node's Duplex.from takes a { readable, writable } pair of Node streams; its types know only web streams'.
  const socket = Duplex.from({ readable: fromPod, writable: toPod } as unknown as Parameters<typeof Duplex.from>[0]);
  try {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(
        { method, path, host: '127.0.0.1', port, headers: { connection: 'close', accept: 'application/json' }, createConnection: () => socket as never, timeout: 60_000 },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error('no answer within 60 s')));
      request.on('error', reject);
      request.end();
    });
    let parsed: { error?: string } | undefined;
    try {
      parsed = JSON.parse(body) as { error?: string };
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) throw new AdminApiError(status, `the builder's admin API answered ${status}: ${parsed?.error ?? body.slice(0, 200)}`);
    if (parsed === undefined) throw new Error(`the builder's admin API answered with something other than JSON: ${body.slice(0, 200)}`);
    return parsed;
  } catch (error) {
    if (error instanceof AdminApiError) throw error;
    const why = forwardError.trim() ? `: ${forwardError.trim()}` : '';
    throw new Error(`calling the builder's admin API on pod ${namespace}/${pod} port ${port} through a port-forward${why}`, { cause: error });
  } finally {
    ws.close();
  }
}
