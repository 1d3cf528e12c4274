// `kublambda invoke`: one HTTP request to a lambda, sent as its Ingress would send it (its
// trigger's host and path) to a runner pod, through the API server's port-forward: the same
// from a laptop against the local platform and against a cluster, with no route to the
// cluster's ingress needed.
import { readFile } from 'node:fs/promises';
import { lambdaPath, type Lambda } from '@kublambda/crd-types';
import { UsageError } from './command-line.ts';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.ts';
import { CommandError } from './kube-errors.ts';
import type { LambdaClient } from './lambda-client.ts';
import type { Terminal } from './lambda-commands.ts';
import type { PodRequest, PodResponse } from './pod-http.ts';

export interface InvokeOptions {
  /** The request body; @file reads a file, @- standard input. */
  data?: string;
  method?: string;
  /** "Name: value", repeatable. */
  header: string[];
  /** Below the trigger's path: /items?id=1. */
  path?: string;
  /** Print the status line and headers before the body. */
  include?: boolean;
  timeoutSeconds?: number;
}

export interface InvokeDeps {
  client: LambdaClient;
  /** Sends the request to a runner pod. */
  send(request: PodRequest): Promise<PodResponse>;
  /** What @file and @- read. */
  readData?(source: string): Promise<Uint8Array>;
}

export async function readDataSource(source: string): Promise<Uint8Array> {
  if (source === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  try {
    return await readFile(source);
  } catch (error) {
    throw new CommandError(`reading --data @${source}: ${(error as Error).message}`);
  }
}

/** The request the lambda's Ingress would pass on: its trigger's path (plus --path) and host. */
export function invokeRequest(lambda: Lambda, options: InvokeOptions, body: Uint8Array | undefined): PodRequest {
  const http = lambda.spec.triggers?.http;
  const name = `${lambda.metadata.namespace}/${lambda.metadata.name}`;
  if (!http) throw new CommandError(`lambda ${name} has no HTTP trigger (spec.triggers.http): invoke calls a lambda over HTTP`);
  const extra = options.path ?? '';
  if (extra && !extra.startsWith('/') && !extra.startsWith('?')) throw new UsageError(`--path must start with / or ?, not "${extra}"`);
  const base = lambdaPath(lambda);
  const prefix = base.endsWith('/') && extra.startsWith('/') ? base.slice(0, -1) : base;
  const headers: Record<string, string> = {};
  for (const header of options.header) {
    const colon = header.indexOf(':');
    const key = colon > 0 ? header.slice(0, colon).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new UsageError(`--header must be "Name: value", not "${header}"`);
    headers[key.toLowerCase()] = header.slice(colon + 1).trim();
  }
  if (http.host) headers.host = http.host;
  const method = (options.method ?? (body ? 'POST' : 'GET')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method must be an HTTP method such as GET or POST, not "${options.method}"`);
  if (body && !headers['content-type']) headers['content-type'] = 'application/octet-stream';
  return { method, path: `${prefix}${extra}`, headers, body, timeoutMs: (options.timeoutSeconds ?? 60) * 1000 };
}

export async function runInvoke(name: string, options: InvokeOptions, deps: InvokeDeps, terminal: Terminal): Promise<number> {
  const lambda = await deps.client.get(name);
  if (!lambda) throw new CommandError(`Lambda "${name}" not found in namespace "${deps.client.namespace}"`);
  let body: Uint8Array | undefined;
  if (options.data !== undefined) body = options.data.startsWith('@') ? await (deps.readData ?? readDataSource)(options.data.slice(1)) : Buffer.from(options.data);
  const request = invokeRequest(lambda, options, body);
  const response = await deps.send(request);
  if (options.include) {
    const lines = [`HTTP/1.1 ${response.status}`, ...Object.entries(response.headers).flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${key}: ${v}`))];
    terminal.out(`${lines.join('\n')}\n\n`);
  }
  terminal.out(response.body.toString('utf8'));
  if (response.status >= 400) {
    terminal.err(`${response.body.length && !response.body.toString('utf8').endsWith('\n') ? '\n' : ''}kublambda invoke: ${request.method} ${request.path} answered ${response.status}\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
