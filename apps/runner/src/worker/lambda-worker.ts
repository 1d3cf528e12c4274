// A lambda's handler in a worker process of its own, under Node's permission model: it may read
// only the host script and a private directory holding a copy of its asset, write only that
// directory, start no processes or threads, and sees only its own environment.
// A worker is spawned generic (spawn): a process with its private directory and permissions but no
// lambda yet, so that a pool can keep some ready. load() then copies a lambda's asset into the
// private directory and has the host install the lambda's env and import the asset.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StateOutcome } from '@kublambda/state-tables';
import { Invocation } from './invocation.ts';
import { MessageChannel } from './message-channel.ts';
import { problemWithHostMessage, type HostMessage, type ParentMessage } from './protocol.ts';
import { LambdaWorkerError, messageOf, type LambdaWorkerOptions, type WorkerLogLine, type WorkerRequest, type WorkerResponse } from './worker-types.ts';

export * from './worker-types.ts';

// From source the host is worker-host.ts beside this file and imports message-channel.ts; the
// bundled runner (tools/build) ships it as one file, worker-host.mjs, beside its main.mjs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const HOST_SCRIPT = fileURLToPath(new URL(FROM_SOURCE ? './worker-host.ts' : './worker-host.mjs', import.meta.url));
/** What the worker process may read besides its private directory. */
const HOST_FILES = FROM_SOURCE ? [HOST_SCRIPT, ...['./message-channel.ts', './state-client.ts'].map((file) => fileURLToPath(new URL(file, import.meta.url)))] : [HOST_SCRIPT];
/** How long a worker whose request timed out has to answer a ping before it counts as blocked. */
const PING_GRACE_MS = 1000;
/**
 * How long stop() lets in-flight requests and waitUntil work finish before killing, at least: a
 * loaded lambda's requests get their whole timeout.
 */
const STOP_GRACE_MS = 5000;
const STDERR_TAIL_LINES = 20;
/** The largest message a worker may send; the host cuts body chunks well below it. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const LOG_LINES_PER_SECOND = 1000;
/** State operations one worker may have the runner perform at once; more are refused, not queued. */
const MAX_STATE_OPERATIONS_IN_FLIGHT = 1024;
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD']);

type State = 'unloaded' | 'starting' | 'ready' | 'stopping' | 'exited';

/** The lambda's env as the host installs it. */
function lambdaEnv(options: LambdaWorkerOptions): Record<string, string> {
  const env = { ...options.env };
  // NODE_OPTIONS would let the lambda's configuration choose Node flags, permissions included.
  delete env.NODE_OPTIONS;
  return env;
}

function spawnHost(memoryMiB: number, privateDir: string, spawnEnv: Record<string, string>): ChildProcess {
  const env = { ...spawnEnv };
  delete env.NODE_OPTIONS;
  const args = [
    '--permission',
    ...HOST_FILES.map((file) => `--allow-fs-read=${file}`),
    `--allow-fs-read=${privateDir}`,
    `--allow-fs-write=${privateDir}`,
    `--max-old-space-size=${memoryMiB}`,
    HOST_SCRIPT,
  ];
  return spawn(process.execPath, args, {
    cwd: privateDir,
    env,
    // fd 3 is the message channel (see message-channel.ts).
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
}

export class LambdaWorker {
  /** Set by load(); a worker without options serves nothing yet. */
  #options: LambdaWorkerOptions | undefined;
  readonly #memoryMiB: number;
  readonly #privateDir: string;
  readonly #child: ChildProcess;
  readonly #channel: MessageChannel<ParentMessage, HostMessage>;
  readonly #invocations = new Map<string, Invocation>();
  readonly #events = new EventEmitter();
  readonly #exited: Promise<void>;
  readonly #stderrTail: string[] = [];
  #state: State = 'unloaded';
  #killReason: string | undefined;
  #pinging = false;
  #stateOperationsInFlight = 0;
  #idleSinceMs = Date.now();
  #invocationsStarted = 0;
  #logWindowStart = 0;
  #logLinesInWindow = 0;
  #logLinesDropped = 0;

  /** Spawns the worker and loads the asset; rejects with LoadFailed when it cannot serve. */
  static async start(options: LambdaWorkerOptions): Promise<LambdaWorker> {
    const worker = await LambdaWorker.spawn(options.limits.memoryMiB);
    return worker.load(options);
  }

  /**
   * Spawns a generic worker: its process, private directory and permissions, no lambda yet.
   * spawnEnv is the process's env until load() replaces it with the lambda's; it defaults to none.
   */
  static async spawn(memoryMiB: number, spawnEnv: Record<string, string> = {}): Promise<LambdaWorker> {
    const privateDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-worker-'));
    const worker = new LambdaWorker(memoryMiB, privateDir, spawnEnv);
    // Resolves once the process has started and warmed up, so a load does not wait for either.
    const booted = await Promise.race([once(worker.#events, 'booted').then(() => true), worker.#exited.then(() => false)]);
    // The client sees the message; what the process printed goes only to the runner's log.
    if (!booted) throw new LambdaWorkerError('LoadFailed', `a worker process ${worker.#exitDescription()} while starting`, { cause: new Error(worker.#stderrTail.join('\n')) });
    return worker;
  }

  private constructor(memoryMiB: number, privateDir: string, spawnEnv: Record<string, string>) {
    this.#memoryMiB = memoryMiB;
    this.#privateDir = privateDir;
    this.#child = spawnHost(memoryMiB, privateDir, spawnEnv);
    this.#exited = once(this.#child, 'close').then(() => this.#onExit());
    this.#channel = new MessageChannel<ParentMessage, HostMessage>(this.#child.stdio[3] as Socket, (message, parts) => this.#onMessage(message, parts), {
      maxFrameBytes: MAX_MESSAGE_BYTES,
      onProtocolError: (problem) => this.#kill(`it broke the message protocol: ${problem}`),
    });
    // Sending to a dead worker fails here too; 'close' reports the death.
    this.#child.on('error', (error) => this.#rememberStderr(`worker process error: ${error.message}`));
    this.#forwardOutput('stdout');
    this.#forwardOutput('stderr');
  }

  get inFlight(): number {
    return this.#invocations.size;
  }

  /** When the worker last had no request in flight (or was loaded); meaningful while inFlight is 0. */
  get idleSinceMs(): number {
    return this.#idleSinceMs;
  }

  get alive(): boolean {
    return this.#state === 'ready';
  }

  /** Spawned, not exited, and no lambda loaded yet: load() may be called. */
  get unloaded(): boolean {
    return this.#state === 'unloaded';
  }

  get memoryMiB(): number {
    return this.#memoryMiB;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Settles once the process has exited and its private directory is removed. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  get #label(): string {
    return this.#options ? `lambda ${this.#options.lambda.namespace}/${this.#options.lambda.name}` : 'unloaded worker';
  }

  get #loaded(): LambdaWorkerOptions {
    if (!this.#options) throw new Error('no lambda is loaded');
    return this.#options;
  }

  /**
   * Loads a lambda into an unloaded worker: copies its asset into the private directory, has the
   * host install the lambda's env and import the asset. Rejects with LoadFailed (and kills the
   * worker) when it cannot serve.
   */
  async load(options: LambdaWorkerOptions): Promise<this> {
    if (this.#state !== 'unloaded') throw new Error(`${this.#label}: the worker is ${this.#state}, only an unloaded worker can load a lambda`);
    if (options.limits.memoryMiB !== this.#memoryMiB) {
      throw new Error(`the worker was spawned with ${this.#memoryMiB} MiB, the lambda needs ${options.limits.memoryMiB} MiB`);
    }
    this.#options = options;
    this.#state = 'starting';
    const assetPath = path.join(this.#privateDir, 'lambda.mjs');
    try {
      await copyFile(options.assetPath, assetPath);
    } catch (error) {
      await this.#failLoad('copying the asset failed');
      throw new LambdaWorkerError('LoadFailed', `copying the asset ${options.assetPath}: ${messageOf(error)}`);
    }
    await this.#load(assetPath);
    return this;
  }

  invoke(request: WorkerRequest): Promise<WorkerResponse> {
    const refusal = this.#refusalOf(request);
    if (refusal) return Promise.reject(refusal);
    const invocation = new Invocation(
      String(this.#invocationsStarted++),
      request,
      { send: (message, parts) => this.#send(message, parts), finished: (id) => this.#onInvocationFinished(id) },
      { timeoutMs: this.#loaded.limits.timeoutSeconds * 1000, label: this.#label, onHeadTimeout: () => void this.#killIfBlocked() },
    );
    this.#invocations.set(invocation.id, invocation);
    if (request.cancellation) {
      // Called for every request once the runner is done with it, so the error is made only when needed.
      request.cancellation.onCancel = () => {
        if (!invocation.done) invocation.cancel(new LambdaWorkerError('ClientClosed', `${this.#label}: the client went away`));
      };
    }
    this.#send({
      type: 'request',
      id: invocation.id,
      requestId: request.requestId,
      method: request.method,
      url: request.url,
      headers: request.headers,
      hasBody: request.body !== null && !METHODS_WITHOUT_BODY.has(request.method.toUpperCase()),
      clientAddress: request.clientAddress,
    });
    return invocation.response;
  }

  /** Lets in-flight requests and waitUntil work finish within a short grace, then kills. */
  async stop(): Promise<void> {
    if (this.#state === 'exited') return this.#exited;
    if (this.#state !== 'stopping') {
      this.#state = 'stopping';
      const graceMs = Math.max(STOP_GRACE_MS, (this.#options?.limits.timeoutSeconds ?? 0) * 1000);
      const deadline = delay(graceMs, undefined, { ref: false });
      if (this.inFlight > 0) await Promise.race([once(this.#events, 'idle'), deadline]);
      this.#send({ type: 'stop' });
      await Promise.race([this.#exited, deadline]);
      this.#kill('stop grace ran out');
    }
    return this.#exited;
  }

  async #load(assetPath: string) {
    const options = this.#loaded;
    this.#send({ type: 'load', assetUrl: pathToFileURL(assetPath).href, lambda: options.lambda, env: lambdaEnv(options) });
    const loadTimeoutMs = options.limits.timeoutSeconds * 1000;
    const failure = await Promise.race([
      once(this.#events, 'loaded').then(([failure]) => failure as string | undefined),
      this.#exited.then(() => `the worker exited while loading: ${this.#exitDescription()}`),
      delay(loadTimeoutMs, undefined, { ref: false }).then(() => `loading took longer than ${loadTimeoutMs} ms`),
    ]);
    if (failure === undefined) {
      this.#state = 'ready';
      this.#idleSinceMs = Date.now();
      return;
    }
    await this.#failLoad('loading failed');
    throw new LambdaWorkerError('LoadFailed', `${this.#label}: ${failure}`);
  }

  async #failLoad(reason: string) {
    this.#kill(reason);
    await this.#exited;
    // The copy may have landed after the exit removed the directory.
    await rm(this.#privateDir, { recursive: true, force: true });
  }

  #refusalOf(request: WorkerRequest): LambdaWorkerError | undefined {
    if (request.cancellation?.cancelled) return new LambdaWorkerError('ClientClosed', `${this.#label}: the client went away`);
    if (this.#state !== 'ready') return new LambdaWorkerError('WorkerExited', `${this.#label}: the worker is ${this.#state}`);
    const { concurrency } = this.#loaded.limits;
    if (this.inFlight >= concurrency) {
      return new LambdaWorkerError('Overloaded', `${this.#label}: ${this.inFlight} requests in flight, the limit is ${concurrency}`);
    }
    return undefined;
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

  #onMessage(message: HostMessage, parts: Uint8Array[]) {
    const problem = problemWithHostMessage(message, parts);
    if (problem) return this.#kill(`it broke the message protocol: ${problem}`);
    switch (message.type) {
      case 'booted':
        return void this.#events.emit('booted');
      case 'ready':
        return void this.#events.emit('loaded', undefined);
      case 'load-failed':
        return void this.#events.emit('loaded', message.message);
      case 'pong':
        return void this.#events.emit('pong');
      case 'state':
        return void this.#performStateOperation(message.id, message.operation, message.requestId);
      case 'log':
        return this.#log({ stream: message.stream, text: message.text, requestId: message.requestId });
      case 'request-body-pull':
        return void this.#invocations.get(message.id)?.sendNextRequestBodyChunk();
      case 'response-head':
        return this.#invocations.get(message.id)?.receiveHead(message.status, message.headers, parts, message.end);
      case 'response-body-chunk':
        return this.#invocations.get(message.id)?.receiveChunk(parts[0]!);
      case 'response-end':
        return this.#invocations.get(message.id)?.receiveEnd();
      case 'response-error':
        return this.#invocations.get(message.id)?.fail(new LambdaWorkerError('HandlerError', `${this.#label}: ${message.message}`));
    }
  }

  async #performStateOperation(id: string, operation: unknown, requestId: string | undefined) {
    const perform = this.#options?.performStateOperation;
    const unavailable = (message: string): StateOutcome => ({ ok: false, error: { code: 'StateUnavailable', message: `${this.#label}: ${message}` } });
    if (!perform) return this.#send({ type: 'state-result', id, outcome: unavailable('this runner has no state store') });
    if (this.#stateOperationsInFlight >= MAX_STATE_OPERATIONS_IN_FLIGHT) {
      return this.#send({ type: 'state-result', id, outcome: unavailable(`more than ${MAX_STATE_OPERATIONS_IN_FLIGHT} state operations in flight; wait for some to finish`) });
    }
    this.#stateOperationsInFlight++;
    try {
      this.#send({ type: 'state-result', id, outcome: await perform(operation, requestId) });
    } finally {
      this.#stateOperationsInFlight--;
    }
  }

  #onInvocationFinished(id: string) {
    this.#invocations.delete(id);
    if (this.inFlight === 0) {
      this.#idleSinceMs = Date.now();
      this.#events.emit('idle');
    }
    this.#options?.onRequestFinished?.();
  }

  #send(message: ParentMessage, parts?: Uint8Array[]) {
    // Sending to a dying worker is harmless: 'close' fails its requests.
    this.#channel.send(message, parts);
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
      this.#log({ stream, text });
    });
  }

  /**
   * Passes the lambda's output on, at most LOG_LINES_PER_SECOND lines a second: a lambda that
   * floods its output must not take the runner's time from the others. What is dropped is said.
   */
  #log(line: WorkerLogLine) {
    const onLog = this.#options?.onLog;
    if (!onLog) return;
    const now = Date.now();
    if (now - this.#logWindowStart >= 1000) {
      if (this.#logLinesDropped > 0) onLog({ stream: 'stderr', text: `${this.#logLinesDropped} lines of output dropped: the limit is ${LOG_LINES_PER_SECOND} a second` });
      this.#logWindowStart = now;
      this.#logLinesInWindow = 0;
      this.#logLinesDropped = 0;
    }
    if (this.#logLinesInWindow++ < LOG_LINES_PER_SECOND) onLog(line);
    else this.#logLinesDropped++;
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
      return new LambdaWorkerError('MemoryLimit', `${this.#label}: the worker ran out of memory (limit ${this.#memoryMiB} MiB)`);
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
