// HTTP to a platform pod's port, reached as `kubectl port-forward` reaches it: through the
// Kubernetes API server with the user's kubeconfig (pods/portforward, one WebSocket per
// request), so no address or credential of the platform's stores is needed on the user's machine.
import http from 'node:http';
import { Duplex, PassThrough, Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { labelSelector } from '@kublambda/crd-types';
import { describeError } from '@kublambda/reconcile-runtime';

export interface PodPort {
  name: string;
  port: number;
}

export interface PlatformPodKind {
  /** What the pods are, for messages: "builder", "runner". */
  what: string;
  labels: Readonly<Record<string, string>>;
  portName: string;
  /** What to check when there is none. */
  hint: string;
}

function isReady(pod: k8s.V1Pod): boolean {
  return !pod.metadata?.deletionTimestamp && Boolean(pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
}

/** Every Ready pod with the named container port, sorted by name so repeated runs agree. */
export function readyPodPorts(pods: k8s.V1Pod[], portName: string): PodPort[] {
  return pods
    .filter(isReady)
    .flatMap((pod) => {
      const port = pod.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === portName)?.containerPort;
      return port ? [{ name: pod.metadata!.name!, port }] : [];
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function noPodMessage(kind: PlatformPodKind, namespace: string): string {
  return `no Ready pod labelled ${labelSelector(kind.labels)} with a container port named "${kind.portName}" in ${namespace}: ${kind.hint}`;
}

export function forbiddenMessage(verbs: string[], resource: string, namespace: string, detail: string): string {
  return `not allowed: this needs ${verbs.map((verb) => `"${verb}"`).join(' and ')} on ${resource} in ${namespace} (Kubernetes RBAC: ask for a Role in ${namespace} that grants it): ${detail}`;
}

export function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The pods of a kind in the platform namespace, as the API server lists them for this user. */
export async function listPlatformPods(kubeConfig: k8s.KubeConfig, namespace: string, kind: PlatformPodKind): Promise<k8s.V1Pod[]> {
  try {
    return (await kubeConfig.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace, labelSelector: labelSelector(kind.labels) })).items;
  } catch (error) {
    if (statusCode(error) === 403) throw new Error(forbiddenMessage(['list'], 'pods', namespace, describeError(error)));
    throw new Error(`listing the ${kind.what} pods in ${namespace} at ${kubeConfig.getCurrentCluster()?.server ?? 'the API server'}`, { cause: error });
  }
}

/** The first Ready pod of a kind with its named port; a clear error when there is none. */
export async function findPlatformPod(kubeConfig: k8s.KubeConfig, namespace: string, kind: PlatformPodKind): Promise<PodPort> {
  const chosen = readyPodPorts(await listPlatformPods(kubeConfig, namespace, kind), kind.portName)[0];
  if (!chosen) throw new Error(noPodMessage(kind, namespace));
  return chosen;
}

export interface PodRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  timeoutMs?: number;
}

export interface PodResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP request to a pod's port through the API server's pods/portforward (WebSocket,
 * channel protocol v4: a data and an error channel per port). Any answer resolves, whatever
 * its status; a refused or broken port-forward rejects with what the API server said.
 */
export async function requestOverPortForward(kubeConfig: k8s.KubeConfig, namespace: string, pod: PodPort, request: PodRequest): Promise<PodResponse> {
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
    ws = (await new k8s.PortForward(kubeConfig, false).portForward(namespace, pod.name, [pod.port], fromPod, errors, toPod)) as unknown as typeof ws;
  } catch (error) {
    const detail = (error as { message?: string }).message ?? String(error);
    // A WebSocket port-forward is a GET that the API server also authorizes as "create" (1.35+).
    if (/\b403\b/.test(detail)) throw new Error(forbiddenMessage(['get', 'create'], 'pods/portforward', namespace, `port-forward to pod ${pod.name} was refused (${detail})`));
    throw new Error(`port-forward to pod ${namespace}/${pod.name} port ${pod.port}: ${detail}`);
  }
  ws.on('close', () => fromPod.end());
  // Node's Duplex.from takes a { readable, writable } pair of Node streams; its types know only web streams'.
  const socket = Duplex.from({ readable: fromPod, writable: toPod } as unknown as Parameters<typeof Duplex.from>[0]);
  const timeoutMs = request.timeoutMs ?? 60_000;
  try {
    return await new Promise<PodResponse>((resolve, reject) => {
      const outgoing = http.request(
        {
          method: request.method,
          path: request.path,
          host: '127.0.0.1',
          port: pod.port,
          headers: { connection: 'close', ...request.headers, ...(request.body ? { 'content-length': String(request.body.byteLength) } : {}) },
          createConnection: () => socket as never,
          timeout: timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
          response.on('error', reject);
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
      outgoing.on('error', reject);
      outgoing.end(request.body);
    });
  } catch (error) {
    const why = forwardError.trim() ? `: ${forwardError.trim()}` : '';
    throw new Error(`${request.method} ${request.path} on pod ${namespace}/${pod.name} port ${pod.port} through a port-forward${why}`, { cause: error });
  } finally {
    ws.close();
  }
}

/** A refusal of a platform admin API (its JSON error), with the HTTP status. */
export class AdminApiError extends Error {
  override readonly name = 'AdminApiError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A JSON request to an admin API on a pod; a non-2xx answer throws AdminApiError with the API's own error text. */
export async function adminJson(kubeConfig: k8s.KubeConfig, namespace: string, pod: PodPort, what: string, method: string, path: string): Promise<unknown> {
  const response = await requestOverPortForward(kubeConfig, namespace, pod, { method, path, headers: { accept: 'application/json' } });
  const text = response.body.toString('utf8');
  let parsed: { error?: string } | undefined;
  try {
    parsed = JSON.parse(text) as { error?: string };
  } catch {
    parsed = undefined;
  }
  if (response.status < 200 || response.status >= 300) throw new AdminApiError(response.status, `${what} answered ${response.status}: ${parsed?.error ?? text.slice(0, 200)}`);
  if (parsed === undefined) throw new Error(`${what} answered with something other than JSON: ${text.slice(0, 200)}`);
  return parsed;
}
