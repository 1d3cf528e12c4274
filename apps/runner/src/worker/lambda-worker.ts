// A lambda's handler in a worker process of its own, under Node's permission model: it may read
// only the host script and a private directory holding a copy of its asset, write only that
// directory, start no processes or threads, and sees only its own environment.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Invocation } from './invocation.ts';
import type { HostMessage, ParentMessage } from './protocol.ts';
import { LambdaWorkerError, messageOf, type LambdaWorkerOptions, type WorkerRequest, type WorkerResponse } from './worker-types.ts';

export * from './worker-types.ts';

const HOST_SCRIPT = fileURLToPath(new URL('./worker-host.ts', import.meta.url));
/** How long a worker whose request timed out has to answer a ping before it counts as blocked. */
const PING_GRACE_MS = 1000;
/** How long stop() lets in-flight requests and waitUntil work finish before killing. */
const STOP_GRACE_MS = 5000;
const STDERR_TAIL_LINES = 20;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD']);

type State = 'starting' | 'ready' | 'stopping' | 'exited';

function spawnHost(options: LambdaWorkerOptions, privateDir: string): ChildProcess {
  const env = { ...options.env };
  // NODE_OPTIONS would let the lambda's configuration choose Node flags, permissions included.
  delete env.NODE_OPTIONS;
  const args = [
    '--permission',
    `--allow-fs-read=${HOST_SCRIPT}`,
    `--allow-fs-read=${privateDir}`,
    `--allow-fs-write=${privateDir}`,
    `--max-old-space-size=${options.limits.memoryMiB}`,
    HOST_SCRIPT,
  ];
  return spawn(process.execPath, args, {
    cwd: privateDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
}

export class LambdaWorker {
  readonly #options: LambdaWorkerOptions;
  readonly #privateDir: string;
  readonly #child: ChildProcess;
  readonly #invocations = new Map<string, Invocation>();
  readonly #events = new EventEmitter();
  readonly #exited: Promise<void>;
  readonly #stderrTail: string[] = [];
  #state: State = 'starting';
  #killReason: string | undefined;
  #pinging = false;

  /** Spawns the worker and loads the asset; rejects with LoadFailed when it cannot serve. */
  static async start(options: LambdaWorkerOptions): Promise<LambdaWorker> {
    const privateDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-worker-'));
    const assetPath = path.join(privateDir, 'lambda.mjs');
    try {
      await copyFile(options.assetPath, assetPath);
    } catch (error) {
      await rm(privateDir, { recursive: true, force: true });
      throw new LambdaWorkerError('LoadFailed', `copying the asset ${options.assetPath}: ${messageOf(error)}`);
    }
    const worker = new LambdaWorker(options, privateDir);
    await worker.#load(assetPath);
    return worker;
  }

  private constructor(options: LambdaWorkerOptions, privateDir: string) {
    this.#options = options;
    this.#privateDir = privateDir;
    this.#child = spawnHost(options, privateDir);
    this.#exited = once(this.#child, 'close').then(() => this.#onExit());
    this.#child.on('message', (message: HostMessage) => this.#onMessage(message));
    // Sending to a dead worker fails here too; 'close' reports the death.
    this.#child.on('error', (error) => this.#rememberStderr(`worker process error: ${error.message}`));
    this.#forwardOutput('stdout');
    this.#forwardOutput('stderr');
  }

  get inFlight(): number {
    return this.#invocations.size;
  }

  get alive(): boolean {
    return this.#state === 'ready';
  }

  get #label(): string {
    return `lambda ${this.#options.lambda.namespace}/${this.#options.lambda.name}`;
  }

  invoke(request: WorkerRequest): Promise<WorkerResponse> {
    const refusal = this.#refusalOf(request);
    if (refusal) return Promise.reject(refusal);
    const invocation = new Invocation(request, {
      send: (message) => this.#send(message),
      finished: (id) => this.#onInvocationFinished(id),
    });
    this.#invocations.set(invocation.id, invocation);
    this.#send({
      type: 'request',
      id: request.requestId,
      method: request.method,
      url: request.url,
      headers: request.headers,
      hasBody: request.body !== null && !METHODS_WITHOUT_BODY.has(request.method.toUpperCase()),
      clientAddress: request.clientAddress,
    });
    this.#startHeadTimer(invocation);
    return invocation.response;
  }

  /** Lets in-flight requests and waitUntil work finish within a short grace, then kills. */
  async stop(): Promise<void> {
    if (this.#state === 'exited') return this.#exited;
    if (this.#state !== 'stopping') {
      this.#state = 'stopping';
      const deadline = delay(STOP_GRACE_MS, undefined, { ref: false });
      if (this.inFlight > 0) await Promise.race([once(this.#events, 'idle'), deadline]);
      this.#send({ type: 'stop' });
      await Promise.race([this.#exited, deadline]);
      this.#kill('stop grace ran out');
    }
    return this.#exited;
  }

  async #load(assetPath: string) {
    this.#send({ type: 'load', assetUrl: pathToFileURL(assetPath).href, lambda: this.#options.lambda });
    const loadTimeoutMs = this.#options.limits.timeoutSeconds * 1000;
    const failure = await Promise.race([
      once(this.#events, 'loaded').then(([failure]) => failure as string | undefined),
      this.#exited.then(() => `the worker exited while loading: ${this.#exitDescription()}`),
      delay(loadTimeoutMs, undefined, { ref: false }).then(() => `loading took longer than ${loadTimeoutMs} ms`),
    ]);
    if (failure === undefined) {
      this.#state = 'ready';
      return;
    }
    this.#kill('loading failed');
    await this.#exited;
    throw new LambdaWorkerError('LoadFailed', `${this.#label}: ${failure}`);
  }

  #refusalOf(request: WorkerRequest): LambdaWorkerError | undefined {
    if (this.#state !== 'ready') return new LambdaWorkerError('WorkerExited', `${this.#label}: the worker is ${this.#state}`);
    if (this.inFlight >= this.#options.limits.concurrency) {
      return new LambdaWorkerError('Overloaded', `${this.#label}: ${this.inFlight} requests in flight, the limit is ${this.#options.limits.concurrency}`);
    }
    if (this.#invocations.has(request.requestId)) throw new Error(`${this.#label}: request ${request.requestId} is already in flight`);
    return undefined;
  }

  #startHeadTimer(invocation: Invocation) {
    const timeoutMs = this.#options.limits.timeoutSeconds * 1000;
    const timer = setTimeout(() => {
      if (invocation.headReceived) return;
      invocation.cancel(new LambdaWorkerError('Timeout', `${this.#label}: no response within ${this.#options.limits.timeoutSeconds} s`));
      void this.#killIfBlocked();
    }, timeoutMs);
    void invocation.response.finally(() => clearTimeout(timer)).catch(() => undefined);
  }

  /** A timeout may be a slow promise or a blocked event loop; only the latter gets no pong. */
  async #killIfBlocked() {
    if (this.#pinging || this.#state === 'exited') return;
    this.#pinging = true;
    this.#send({ type: 'ping' });
    const answered = await Promise.race([once(this.#events, 'pong').then(() => true), delay(PING_GRACE_MS, undefined, { ref: false }).then(() => false)]);
    this.#pinging = false;
    if (!answered) this.#kill(`a request timed out and the event loop did not answer within ${PING_GRACE_MS} ms`);
  }

  #onMessage(message: HostMessage) {
    switch (message.type) {
      case 'ready':
        return void this.#events.emit('loaded', undefined);
      case 'load-failed':
        return void this.#events.emit('loaded', message.message);
      case 'pong':
        return void this.#events.emit('pong');
      case 'log':
        return this.#options.onLog?.({ stream: message.stream, text: message.text, requestId: message.requestId });
      case 'request-body-pull':
        return void this.#invocations.get(message.id)?.sendNextRequestBodyChunk();
      case 'response-head':
        return this.#invocations.get(message.id)?.receiveHead(message.status, message.headers);
      case 'response-body-chunk':
        return this.#invocations.get(message.id)?.receiveChunk(message.chunk);
      case 'response-end':
        return this.#invocations.get(message.id)?.receiveEnd();
      case 'response-error':
        return this.#invocations.get(message.id)?.fail(new LambdaWorkerError('HandlerError', `${this.#label}: ${message.message}`));
    }
  }

  #onInvocationFinished(id: string) {
    this.#invocations.delete(id);
    if (this.inFlight === 0) this.#events.emit('idle');
  }

  #send(message: ParentMessage) {
    if (!this.#child.connected) return;
    // A failed send means the worker is dying; 'close' fails its requests.
    this.#child.send(message, undefined, undefined, () => undefined);
  }

  #kill(reason: string) {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#killReason ??= reason;
    if (this.#state !== 'exited') this.#state = 'stopping';
    this.#child.kill('SIGKILL');
  }

  #forwardOutput(stream: 'stdout' | 'stderr') {
    const lines = createInterface({ input: this.#child[stream]!, crlfDelay: Infinity });
    lines.on('line', (text) => {
      if (stream === 'stderr') this.#rememberStderr(text);
      this.#options.onLog?.({ stream, text });
    });
  }

  #rememberStderr(line: string) {
    this.#stderrTail.push(line);
    if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
  }

  #exitDescription(): string {
    const { exitCode, signalCode } = this.#child;
    const how = signalCode ? `killed by ${signalCode}` : `exited with code ${exitCode}`;
    return this.#killReason ? `${how}: ${this.#killReason}` : how;
  }

  #exitError(): LambdaWorkerError {
    if (this.#stderrTail.some((line) => line.includes('heap out of memory'))) {
      return new LambdaWorkerError('MemoryLimit', `${this.#label}: the worker ran out of memory (limit ${this.#options.limits.memoryMiB} MiB)`);
    }
    return new LambdaWorkerError('WorkerExited', `${this.#label}: the worker ${this.#exitDescription()}`);
  }

  async #onExit() {
    this.#state = 'exited';
    const error = this.#exitError();
    for (const invocation of [...this.#invocations.values()]) invocation.fail(error);
    await rm(this.#privateDir, { recursive: true, force: true });
  }
}
