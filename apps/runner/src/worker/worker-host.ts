// The lambda's process: started by LambdaWorker under Node's permission model. It loads the
// lambda's asset, turns request messages into web Requests, calls the handler and streams the
// Response back. It may read only the files in HOST_FILES (lambda-worker.ts) and the lambda's
// private directory, so it imports nothing else from this folder but types.
import { AsyncLocalStorage } from 'node:async_hooks';
import { access } from 'node:fs/promises';
import { Socket } from 'node:net';
import { format } from 'node:util';
import type { LambdaContext } from '@kublambda/lambda-api';
import type { StateOutcome } from '@kublambda/state-tables';
import { MessageChannel } from './message-channel.ts';
import type { HostMessage, LambdaIdentity, ParentMessage } from './protocol.ts';
import { lambdaState } from './state-client.ts';


type Invoke = (request: Request, context: LambdaContext) => Promise<unknown>;
type RequestMessage = Extract<ParentMessage, { type: 'request' }>;

/**
 * A call's cancellation. Its AbortSignal is made only when the handler asks for one (most never
 * do): an AbortController costs more than a small request's other work here.
 */
class CallAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason;
  }
}

interface HostCall {
  readonly abort: CallAbort;
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

// The runner's end of the channel is fd 3; when it closes there is nobody left to answer to.
const channelSocket = new Socket({ fd: 3, readable: true, writable: true });
/** The id of the last request whose handler was called and not yet reported (see 'started'). */
let startedUnreported: string | undefined;
const channel = new MessageChannel<HostMessage, ParentMessage>(channelSocket, onMessage, { beforeFlush: reportStarted });
channelSocket.on('close', () => process.exit(0));

function send(message: HostMessage, parts?: Uint8Array[]): void {
  channel.send(message, parts);
}

const stateCalls = new Map<string, (outcome: StateOutcome) => void>();
let stateCallsMade = 0;
const state = lambdaState(
  (operation) =>
    new Promise((resolve) => {
      const id = String(stateCallsMade++);
      stateCalls.set(id, resolve);
      send({ type: 'state', id, requestId: requestIds.getStore(), operation });
    }),
);

function reportStarted() {
  if (startedUnreported === undefined) return;
  send({ type: 'started', upTo: startedUnreported });
  startedUnreported = undefined;
}

function settleStateCall(id: string, outcome: StateOutcome) {
  stateCalls.get(id)?.(outcome);
  stateCalls.delete(id);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sendLog(stream: 'stdout' | 'stderr', args: unknown[]) {
  const requestId = requestIds.getStore();
  for (const text of format(...args).split('\n')) send({ type: 'log', stream, text, requestId });
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

/**
 * Without network access fetch fails with a bare "fetch failed"; this says why. The process's
 * permissions do the refusing, not this wrapper: net, dgram and DNS are refused all the same.
 */
function explainFetchWithoutNetwork() {
  if (process.permission?.has('net') !== false) return;
  const fetchWithNetwork = globalThis.fetch;
  globalThis.fetch = async (...args: Parameters<typeof fetch>) => {
    try {
      return await fetchWithNetwork(...args);
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      if (cause?.code !== 'ERR_ACCESS_DENIED') throw error;
      throw new TypeError(`fetch failed: this lambda has no network access (spec.network: none)`, { cause });
    }
  };
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
    send({ type: 'ready' });
  } catch (error) {
    send({ type: 'load-failed', message: messageOf(error) });
  }
}

/**
 * A Request whose signal is the call's own. Given a signal, Request makes one of its own that
 * follows it, which costs more than the rest of the Request.
 */
class LambdaRequest extends Request {
  readonly #abort: CallAbort;

  constructor(abort: CallAbort, input: string, init: RequestInit) {
    super(input, init);
    this.#abort = abort;
  }

  // @ts-expect-error the DOM typings declare signal a property; Request implements it as an accessor.
  override get signal(): AbortSignal {
    return this.#abort.signal;
  }
}

function requestBodyStream(id: string, call: HostCall): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: (controller) =>
      new Promise<void>((delivered) => {
        call.requestBody = { controller, delivered };
        send({ type: 'request-body-pull', id });
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
  call.abort.throwIfAborted();
  return new Promise((resolve, reject) => {
    call.responsePull = { resolve, reject };
  });
}

function cancel(id: string) {
  const call = calls.get(id);
  if (!call) return;
  call.abort.abort(new Error('the runner cancelled the request'));
  call.responsePull?.reject(call.abort.reason);
}

const IMMEDIATE = Symbol('immediate');
let turnOver: Promise<typeof IMMEDIATE> | undefined;

/** Resolves once this turn of the event loop is over; one promise for all the calls of a turn. */
function endOfTurn(): Promise<typeof IMMEDIATE> {
  turnOver ??= new Promise((resolve) =>
    setImmediate(() => {
      turnOver = undefined;
      resolve(IMMEDIATE);
    }),
  );
  return turnOver;
}
/** Bytes of a response body sent along with its head when they are ready at once. */
const BYTES_WITH_HEAD = 64 * 1024;
/** The most body bytes in one message: the runner refuses messages far larger (lambda-worker.ts). */
const MAX_PIECE_BYTES = 1024 * 1024;

interface ReadyStart {
  chunks: Uint8Array[];
  end: boolean;
  /** A read that was not ready at once; the next chunk comes from it. */
  pending?: ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>;
}

/**
 * The chunks the body has ready within this turn of the event loop (a Response made from a
 * string or buffer has all of it), without waiting for a stream that produces later: its head
 * must not wait for its body.
 */
async function readyStartOf(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<ReadyStart> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const turnOver = endOfTurn();
  while (bytes < BYTES_WITH_HEAD) {
    const read = reader.read();
    const result = await Promise.race([read, turnOver]);
    if (result === IMMEDIATE) {
      // Awaited later, unless the request is cancelled first.
      read.catch(() => undefined);
      return { chunks, end: false, pending: read };
    }
    if (result.done) return { chunks, end: true };
    // A large chunk goes in pieces, after the head.
    if (result.value.byteLength > MAX_PIECE_BYTES) return { chunks, end: false, pending: read };
    chunks.push(result.value);
    bytes += result.value.byteLength;
  }
  return { chunks, end: false };
}

type Reply = (message: HostMessage, parts?: Uint8Array[]) => void;

async function streamResponse(id: string, call: HostCall, response: Response, reply: Reply) {
  call.abort.throwIfAborted();
  const head = { type: 'response-head' as const, id, status: response.status, headers: [...response.headers] };
  if (!response.body) return reply({ ...head, end: true });
  const reader = response.body.getReader();
  try {
    const start = await readyStartOf(reader);
    reply({ ...head, end: start.end }, start.chunks);
    if (start.end) return;
    let pending = start.pending;
    for (;;) {
      await waitForResponsePull(call);
      const { done, value } = await (pending ?? reader.read());
      pending = undefined;
      if (done) return reply({ type: 'response-end', id });
      for (let offset = 0; ; ) {
        reply({ type: 'response-body-chunk', id }, [value.subarray(offset, offset + MAX_PIECE_BYTES)]);
        offset += MAX_PIECE_BYTES;
        if (offset >= value.byteLength) break;
        await waitForResponsePull(call);
      }
    }
  } catch (error) {
    // Lets the handler's stream stop producing; fails harmlessly when the stream itself errored.
    reader.cancel(error).catch(() => undefined);
    throw error;
  }
}

function contextFor(message: RequestMessage): LambdaContext {
  return {
    requestId: message.requestId,
    env,
    lambda,
    clientAddress: message.clientAddress,
    state,
    waitUntil(promise) {
      const tracked = Promise.resolve(promise)
        .catch((error: unknown) => console.error(`waitUntil promise rejected: ${messageOf(error)}`))
        .finally(() => {
          backgroundWork.delete(tracked);
          if (backgroundWork.size === 0) send({ type: 'background', pending: false });
        });
      // The runner lets an idle worker run on (up to the lambda's timeout) while this is pending.
      if (backgroundWork.size === 0) send({ type: 'background', pending: true });
      backgroundWork.add(tracked);
    },
  };
}

function handleRequest(message: RequestMessage) {
  const call: HostCall = { abort: new CallAbort() };
  calls.set(message.id, call);
  startedUnreported = message.id;
  channel.flushSoon();
  void serveCall(message, call, invoke, send);
}

/** One request through the handler, its answer (or failure) handed to reply. */
async function serveCall(message: RequestMessage, call: HostCall, handler: Invoke, reply: Reply) {
  const { id } = message;
  try {
    const request = new LambdaRequest(call.abort, message.url, {
      method: message.method,
      headers: message.headers,
      body: message.hasBody ? requestBodyStream(id, call) : null,
      duplex: 'half',
    } as RequestInit);
    const response = await requestIds.run(message.requestId, () => handler(request, contextFor(message)));
    if (!(response instanceof Response)) throw new Error(`the handler returned ${format('%o', response)}, not a Response`);
    await streamResponse(id, call, response, reply);
  } catch (error) {
    if (!call.abort.aborted) reply({ type: 'response-error', id, message: messageOf(error) });
  } finally {
    calls.delete(id);
  }
}

async function stop() {
  await Promise.allSettled(backgroundWork);
  await channel.drained();
  process.exit(0);
}

function onMessage(message: ParentMessage, parts: Uint8Array[]) {
  switch (message.type) {
    case 'load':
      return void load(message.assetUrl, message.lambda, message.env);
    case 'request':
      return void handleRequest(message);
    case 'request-body-chunk':
      return deliverRequestBody(message.id, (controller) => controller.enqueue(parts[0]!));
    case 'request-body-end':
      return deliverRequestBody(message.id, (controller) => controller.close());
    case 'request-body-error':
      return deliverRequestBody(message.id, (controller) => controller.error(new Error(message.message)));
    case 'response-body-pull':
      return calls.get(message.id)?.responsePull?.resolve();
    case 'cancel':
      return cancel(message.id);
    case 'ping':
      return send({ type: 'pong' });
    case 'state-result':
      return settleStateCall(message.id, message.outcome);
    case 'stop':
      return void stop();
  }
}

/**
 * Node loads the fetch classes (Request, Response, their streams) on first use, and compiles the
 * request path and the module loader's on first use, which together take longer than the rest of
 * a request; doing it at spawn keeps it out of the lambda's cold start. The request goes through
 * the same code as a lambda's, to a handler of the host's own, and its answer is discarded.
 */
async function warmUp() {
  // The first import of a module costs several times a later one.
  const warmModule: string = 'data:text/javascript,export default 0';
  await import(warmModule);
  const warmMessage: RequestMessage = {
    type: 'request',
    id: 'warm-up',
    requestId: 'warm-up',
    method: 'GET',
    url: 'http://warm.up/',
    headers: [['x-warm', 'up']],
    hasBody: false,
    clientAddress: '127.0.0.1',
  };
  await serveCall(warmMessage, { abort: new CallAbort() }, async () => new Response('warm'), () => undefined);
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
  // The first file operation starts libuv's thread pool (its threads' stacks are allocated
  // memory); started here, it is part of the worker's footprint, not the lambda's memoryMiB.
  await access('.');
}

captureConsole();
explainFetchWithoutNetwork();
// A failed warm-up only means the first request pays for it.
void warmUp()
  .catch(() => undefined)
  .then(() => send({ type: 'booted' }));
