import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from './kube-object.ts';

// Plain requests to the API server with the kubeconfig's credentials, rather than client-node's
// Watch: the watcher needs the HTTP status of a watch (410, 403), ERROR events, and to stop
// reading the stream while deliveries catch up (back-pressure), which a callback cannot do.

/** The API server answered with an error status, as an HTTP response or an ERROR watch event. */
export class KubeStatusError extends Error {
  override readonly name = 'KubeStatusError';
  readonly code: number;
  constructor(code: number, message: string) {
    super(`HTTP ${code}: ${message}`);
    this.code = code;
  }
}

export function isGone(error: unknown): boolean {
  return error instanceof KubeStatusError && error.code === 410;
}

export interface ListPage {
  items: KubeObject[];
  metadata?: { resourceVersion?: string; continue?: string };
}

/** ERROR events never reach the caller: watchEvents throws them. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: KubeObject & { code?: number; message?: string };
}

export function apiServerUrl(kubeConfig: KubeConfig): string {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  return cluster.server.replace(/\/+$/, '');
}

async function get(kubeConfig: KubeConfig, path: string, query: Record<string, string | undefined>, signal: AbortSignal, idleTimeoutMs: number): Promise<http.IncomingMessage> {
  const url = new URL(apiServerUrl(kubeConfig) + path);
  for (const [key, value] of Object.entries(query)) if (value) url.searchParams.set(key, value);
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const client = url.protocol === 'https:' ? https : http;
  // The kubeconfig's agent speaks TLS; a plain-HTTP server (a local proxy) takes the default one.
  if (url.protocol === 'http:') delete options.agent;
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = client.request(url, { ...options, signal }, resolve);
    request.setTimeout(idleTimeoutMs, () => request.destroy(new Error(`no data from the API server for ${idleTimeoutMs} ms`)));
    request.on('error', reject);
    request.end();
  });
  if (response.statusCode !== 200) {
    const body = await readBody(response);
    let message = body.slice(0, 300);
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // Not a Status object; the start of the body says enough.
    }
    throw new KubeStatusError(response.statusCode ?? 0, message);
  }
  return response;
}

async function readBody(response: http.IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let body = '';
  for await (const chunk of response) body += chunk as string;
  return body;
}

/** One page of a list; items get the apiVersion and kind a list leaves out, so they read as whole objects. */
export async function listPage(
  kubeConfig: KubeConfig,
  path: string,
  query: { labelSelector?: string; fieldSelector?: string; limit: number; continue?: string },
  type: { apiVersion: string; kind: string },
  signal: AbortSignal,
): Promise<ListPage> {
  const response = await get(kubeConfig, path, { ...query, limit: String(query.limit) }, signal, 60_000);
  const page = JSON.parse(await readBody(response)) as ListPage;
  page.items = (page.items ?? []).map((item) => ({ apiVersion: type.apiVersion, kind: type.kind, ...item }));
  return page;
}

/**
 * The events of one watch, read only as fast as the caller takes them. Ends when the API
 * server closes the watch (its timeoutSeconds); an ERROR event is thrown as a KubeStatusError.
 */
export async function* watchEvents(
  kubeConfig: KubeConfig,
  path: string,
  query: { labelSelector?: string; fieldSelector?: string; resourceVersion: string; timeoutSeconds: number },
  signal: AbortSignal,
  onOpen: () => void = () => undefined,
): AsyncGenerator<WatchEvent> {
  const response = await get(
    kubeConfig,
    path,
    { ...query, timeoutSeconds: String(query.timeoutSeconds), watch: 'true', allowWatchBookmarks: 'true' },
    signal,
    // Bookmarks come about every minute; a watch silent for much longer than its timeout is dead.
    (query.timeoutSeconds + 60) * 1_000,
  );
  onOpen();
  const lines = createInterface({ input: response, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as WatchEvent | { type: 'ERROR'; object: { code?: number; message?: string } };
      if (event.type === 'ERROR') throw new KubeStatusError(event.object.code ?? 500, event.object.message ?? 'watch error');
      yield event;
    }
  } finally {
    lines.close();
    response.destroy();
  }
}
