// The lambda's process: started by LambdaWorker under Node's permission model. It loads the
// lambda's asset, turns request messages into web Requests, calls the handler and streams the
// Response back. Only type imports from this folder: the process may read this file and the
// lambda's private directory, nothing else.
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import type { HostMessage, LambdaIdentity, ParentMessage } from './protocol.ts';

interface LambdaContext {
  requestId: string;
  env: Readonly<Record<string, string | undefined>>;
  lambda: LambdaIdentity;
  clientAddress: string;
  waitUntil(promise: Promise<unknown>): void;
}

type Invoke = (request: Request, context: LambdaContext) => Promise<unknown>;
type RequestMessage = Extract<ParentMessage, { type: 'request' }>;

interface HostCall {
  readonly abort: AbortController;
  requestBody?: { controller: ReadableStreamDefaultController<Uint8Array>; delivered: () => void };
  responsePull?: { resolve: () => void; reject: (reason: unknown) => void };
}

// The lambda's env, installed by the load message; until then the process has its spawn-time env.
let env: Readonly<Record<string, string | undefined>> = Object.freeze({});
const requestIds = new AsyncLocalStorage<string>();
const calls = new Map<string, HostCall>();
const backgroundWork = new Set<Promise<unknown>>();
let lambda: LambdaIdentity;
let invoke: Invoke;

function send(message: HostMessage): Promise<void> {
  // The callback fires once the message is written; an error means the parent is gone, and
  // 'disconnect' ends this process.
  return new Promise((resolve) => process.send!(message, undefined, undefined, () => resolve()));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sendLog(stream: 'stdout' | 'stderr', args: unknown[]) {
  const requestId = requestIds.getStore();
  for (const text of format(...args).split('\n')) void send({ type: 'log', stream, text, requestId });
}

function captureConsole() {
  for (const method of ['log', 'info', 'debug'] as const) console[method] = (...args) => sendLog('stdout', args);
  for (const method of ['warn', 'error'] as const) console[method] = (...args) => sendLog('stderr', args);
}

function invokerOf(module: { default?: unknown }): Invoke {
  const exported = module.default as
    | ((request: Request, context: LambdaContext) => unknown)
    | { fetch?: (request: Request, env: LambdaContext['env'], context: LambdaContext) => unknown }
    | undefined;
  if (typeof exported === 'function') return async (request, context) => exported(request, context);
  if (typeof exported?.fetch === 'function') {
    return async (request, context) => exported.fetch!(request, context.env, context);
  }
  throw new Error('the default export is neither a handler function nor an object with a fetch method');
}

/** Replaces the spawn-time env with the lambda's, so the asset sees only its own from import on. */
function installEnv(lambdaEnv: Record<string, string>) {
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, lambdaEnv);
  env = Object.freeze({ ...process.env });
}

async function load(assetUrl: string, identity: LambdaIdentity, lambdaEnv: Record<string, string>) {
  lambda = identity;
  try {
    installEnv(lambdaEnv);
    invoke = invokerOf(await import(assetUrl));
    await send({ type: 'ready' });
  } catch (error) {
    await send({ type: 'load-failed', message: messageOf(error) });
  }
}

function requestBodyStream(id: string, call: HostCall): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: (controller) =>
      new Promise<void>((delivered) => {
        call.requestBody = { controller, delivered };
        void send({ type: 'request-body-pull', id });
      }),
  });
}

function deliverRequestBody(id: string, deliver: (controller: ReadableStreamDefaultController<Uint8Array>) => void) {
  const body = calls.get(id)?.requestBody;
  if (!body) return;
  deliver(body.controller);
  body.delivered();
}

function waitForResponsePull(call: HostCall): Promise<void> {
  call.abort.signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    call.responsePull = { resolve, reject };
  });
}

function cancel(id: string) {
  const call = calls.get(id);
  if (!call) return;
  call.abort.abort(new Error('the runner cancelled the request'));
  call.responsePull?.reject(call.abort.signal.reason);
}

async function streamResponse(id: string, call: HostCall, response: Response) {
  call.abort.signal.throwIfAborted();
  await send({ type: 'response-head', id, status: response.status, headers: [...response.headers] });
  if (!response.body) return send({ type: 'response-end', id });
  const reader = response.body.getReader();
  try {
    for (;;) {
      await waitForResponsePull(call);
      const { done, value } = await reader.read();
      if (done) return await send({ type: 'response-end', id });
      await send({ type: 'response-body-chunk', id, chunk: value });
    }
  } catch (error) {
    // Lets the handler's stream stop producing; fails harmlessly when the stream itself errored.
    reader.cancel(error).catch(() => undefined);
    throw error;
  }
}

function contextFor(message: RequestMessage): LambdaContext {
  return {
    requestId: message.id,
    env,
    lambda,
    clientAddress: message.clientAddress,
    waitUntil(promise) {
      const tracked = Promise.resolve(promise)
        .catch((error: unknown) => console.error(`waitUntil promise rejected: ${messageOf(error)}`))
        .finally(() => backgroundWork.delete(tracked));
      backgroundWork.add(tracked);
    },
  };
}

async function handleRequest(message: RequestMessage) {
  const { id } = message;
  const call: HostCall = { abort: new AbortController() };
  calls.set(id, call);
  try {
    const request = new Request(message.url, {
      method: message.method,
      headers: message.headers,
      body: message.hasBody ? requestBodyStream(id, call) : null,
      signal: call.abort.signal,
      duplex: 'half',
    } as RequestInit);
    const response = await requestIds.run(id, () => invoke(request, contextFor(message)));
    if (!(response instanceof Response)) throw new Error(`the handler returned ${format('%o', response)}, not a Response`);
    await streamResponse(id, call, response);
  } catch (error) {
    if (!call.abort.signal.aborted) await send({ type: 'response-error', id, message: messageOf(error) });
  } finally {
    calls.delete(id);
  }
}

async function stop() {
  await Promise.allSettled(backgroundWork);
  process.exit(0);
}

function onMessage(message: ParentMessage) {
  switch (message.type) {
    case 'load':
      return void load(message.assetUrl, message.lambda, message.env);
    case 'request':
      return void handleRequest(message);
    case 'request-body-chunk':
      return deliverRequestBody(message.id, (controller) => controller.enqueue(message.chunk));
    case 'request-body-end':
      return deliverRequestBody(message.id, (controller) => controller.close());
    case 'request-body-error':
      return deliverRequestBody(message.id, (controller) => controller.error(new Error(message.message)));
    case 'response-body-pull':
      return calls.get(message.id)?.responsePull?.resolve();
    case 'cancel':
      return cancel(message.id);
    case 'ping':
      return void send({ type: 'pong' });
    case 'stop':
      return void stop();
  }
}

/**
 * Node loads the fetch classes (Request, Response, their streams) on first use, which takes
 * longer than the rest of a request; doing it at spawn keeps it out of the lambda's cold start.
 */
async function warmUp() {
  const request = new Request('http://warm.up/', {
    method: 'POST',
    headers: [['x-warm', 'up']],
    body: new ReadableStream({ start: (controller) => controller.close() }),
    duplex: 'half',
  } as RequestInit);
  await request.arrayBuffer();
  const response = new Response(new ReadableStream({ start: (controller) => controller.close() }), { headers: [['x-warm', 'up']] });
  const reader = response.body!.getReader();
  await reader.read();
  void [...response.headers];
  await Response.json({}).text();
}

captureConsole();
process.on('message', onMessage);
void warmUp().catch(() => undefined);
// Without the runner there is nobody to answer to.
process.on('disconnect', () => process.exit(0));
