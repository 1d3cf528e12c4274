import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { forLambda, type Logger } from '@kublambda/logging';
import type { LambdaWorkers } from './lambda-workers.ts';
import type { RunnerMetrics } from './metrics.ts';
import type { RouteMatcher } from './route-matcher.ts';
import { cancelRequest, LambdaWorkerError, type Cancellation } from './worker/lambda-worker.ts';

export interface ServeOptions {
  routes: RouteMatcher;
  workers: LambdaWorkers;
  maxBodyBytes: number;
  /** A request for <host><hostSuffix> is routed as for <host>. */
  hostSuffix?: string;
  metrics: RunnerMetrics;
  logger: Logger;
}

class RequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function sendJsonError(response: ServerResponse, status: number, error: string, message: string, requestId: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body = JSON.stringify({ error, message, requestId });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId };
  // Busy now, not broken: a client may try again shortly.
  if (error === 'Overloaded') headers['retry-after'] = 1;
  response.writeHead(status, headers);
  response.end(body);
}

/** A request id from the client is kept when it is this; otherwise the runner makes one. */
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Response headers about the connection, not the response: the runner's connection to the
 * client is its own business (a lambda's transfer-encoding would also contradict the length).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** Statuses whose responses have no body and must not say how long it is. */
const BODYLESS_STATUS = new Set([204, 304]);

/**
 * A body that is all here goes out in one write with its true length, so clients need not read
 * chunked encoding and a wrong length from the lambda cannot leave them waiting. A HEAD answer
 * and bodiless statuses keep what the lambda said.
 */
function sendWholeBody(response: ServerResponse, status: number, headers: string[], chunks: Uint8Array[], isHead: boolean): void {
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  if (isHead || BODYLESS_STATUS.has(status)) return void response.writeHead(status, headers).end(body);
  const withLength: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] !== 'content-length') withLength.push(headers[i]!, headers[i + 1]!);
  withLength.push('content-length', String(body.byteLength));
  response.writeHead(status, withLength);
  response.end(body);
}

/** Header pairs as received (repeated headers kept), plus the proxy headers the lambda expects. */
function forwardedHeaders(request: IncomingMessage, requestId: string, prefix: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const raw = request.rawHeaders;
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'x-forwarded-for') forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]}` : raw[i + 1];
    else if (name !== 'x-request-id' && name !== 'x-forwarded-prefix') pairs.push([name, raw[i + 1]!]);
  }
  const client = request.socket.remoteAddress ?? '';
  pairs.push(['x-forwarded-for', forwardedFor ? `${forwardedFor}, ${client}` : client]);
  pairs.push(['x-request-id', requestId]);
  pairs.push(['x-forwarded-prefix', prefix]);
  return pairs;
}

/**
 * The request body, failing once it grows past the limit. The overflow is also recorded: the
 * worker reports a failed body read its own way, and the client must still get a 413.
 */
async function* limitedBody(request: IncomingMessage, maxBytes: number, overflow: { error?: RequestError }): AsyncIterable<Uint8Array> {
  let received = 0;
  for await (const chunk of request) {
    received += (chunk as Buffer).length;
    if (received > maxBytes) {
      overflow.error = new RequestError(413, 'PayloadTooLarge', `the request body is larger than ${maxBytes} bytes`);
      throw overflow.error;
    }
    yield chunk as Buffer;
  }
}

/**
 * One HTTP request: route by host and path, hand the request to the lambda's worker, stream
 * the answer back. Every failure is a JSON body with a request id.
 */
export async function serveRequest(request: IncomingMessage, response: ServerResponse, options: ServeOptions): Promise<void> {
  const given = request.headers['x-request-id'];
  const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  // Parsed as a URL so that dot segments and percent-encoding are resolved before routing.
  const { pathname, search } = new URL(request.url ?? '/', 'http://placeholder');
  const requestHost = (request.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const host = options.hostSuffix && requestHost.endsWith(options.hostSuffix) ? requestHost.slice(0, -options.hostSuffix.length) : requestHost;
  const match = options.routes.match(host, pathname);
  if (!match) return sendJsonError(response, 404, 'NoRoute', `no lambda serves ${pathname}`, requestId);

  const { route, pathBelowPrefix } = match;
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > options.maxBodyBytes) {
    return sendJsonError(response, 413, 'PayloadTooLarge', `the request body is larger than ${options.maxBodyBytes} bytes`, requestId);
  }
  const labels = { namespace: route.namespace, lambda: route.name };
  const { metrics } = options;
  metrics.inFlight.inc();
  const observeDuration = metrics.duration.startTimer(labels);
  // Cancelled when the client goes away, and in any case once this function is done with the
  // request, so nothing is left running in the worker for it.
  const cancellation: Cancellation = { cancelled: false };
  response.once('close', () => {
    const clientLeft = !response.writableFinished;
    if (clientLeft) cancelRequest(cancellation);
    metrics.inFlight.dec();
    observeDuration();
    metrics.requests.inc({ ...labels, code: String(clientLeft ? 499 : response.statusCode) });
  });
  const overflow: { error?: RequestError } = {};
  try {
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    const answer = await options.workers.invoke(route, {
      requestId,
      method: request.method ?? 'GET',
      url: `http://${request.headers.host ?? 'localhost'}${pathBelowPrefix}${search}`,
      headers: forwardedHeaders(request, requestId, route.pathPrefix),
      body: hasBody ? limitedBody(request, options.maxBodyBytes, overflow) : null,
      clientAddress: request.socket.remoteAddress ?? '',
      cancellation,
    });
    const headers: string[] = [];
    for (const [name, value] of answer.headers) if (!HOP_BY_HOP.has(name)) headers.push(name, value);
    headers.push('x-request-id', requestId);
    if (answer.wholeBody) return sendWholeBody(response, answer.status, headers, answer.wholeBody, request.method === 'HEAD');
    response.writeHead(answer.status, headers);
    const closed = once(response, 'close');
    for await (const chunk of answer.body) {
      // Leaving the loop stops the body, which cancels the request in the worker.
      if (cancellation.cancelled) return;
      if (!response.write(chunk)) await Promise.race([once(response, 'drain'), closed]);
    }
    if (cancellation.cancelled) return;
    response.end();
  } catch (error) {
    if (overflow.error) return sendJsonError(response, 413, overflow.error.code, overflow.error.message, requestId);
    // Only failures are logged here; the logger for the request is made only then.
    const log = forLambda(options.logger, route, requestId);
    if (error instanceof LambdaWorkerError) {
      if (error.kind === 'ClientClosed') {
        log.info('client went away', { error: error.message });
        return;
      }
      log.warn('invocation failed', { kind: error.kind, error: error.message });
      return sendJsonError(response, error.status, error.kind, error.message, requestId);
    }
    log.error('request failed', { error: String(error) });
    sendJsonError(response, 500, 'InternalError', 'the runner failed to serve this request', requestId);
  } finally {
    cancelRequest(cancellation);
  }
}
