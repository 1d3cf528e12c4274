// A lambda's handler in a worker process of its own, under Node's permission model: it may read
// only the host script and a private directory holding a copy of its asset, write only that
// directory, start no processes or threads, use the network only when its profile allows, and
// sees only its own environment. The runner also holds it to its limits from outside, where the
// lambda's code cannot interfere: its memory (a kernel limit on allocations, and /proc checked
// while it runs), the CPU its requests use, no CPU at all while it has nothing to do (the
// process is stopped until its next request), a lower scheduling priority than the runner's, and
// first in line for the kernel's OOM killer.
// A worker is spawned generic (spawn): a process with its private directory and permissions but no
// lambda yet, so that a pool can keep some ready. load() then copies a lambda's asset into the
// private directory and has the host install the lambda's env and import the asset.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { StateOutcome } from '@kublambda/state-tables';
import { Invocation } from './invocation.ts';
import { MessageChannel } from './message-channel.ts';
import { ProcessUsage, type MemoryUsage } from './process-usage.ts';
import { problemWithHostMessage, type HostMessage, type ParentMessage } from './protocol.ts';
import {
  LambdaWorkerError,
  messageOf,
  profileKey,
  type LambdaWorkerOptions,
  type WorkerLogLine,
  type WorkerProfile,
  type WorkerRequest,
  type WorkerResponse,
} from './worker-types.ts';

export * from './worker-types.ts';

// From source the host is worker-host.ts beside this file and imports message-channel.ts; the
// bundled runner (tools/build) ships it as one file, worker-host.mjs, beside its main.mjs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const HOST_SCRIPT = fileURLToPath(new URL(FROM_SOURCE ? './worker-host.ts' : './worker-host.mjs', import.meta.url));
/** What the worker process may read besides its private directory. */
const HOST_FILES = FROM_SOURCE ? [HOST_SCRIPT, ...['./message-channel.ts', './state-client.ts'].map((file) => fileURLToPath(new URL(file, import.meta.url)))] : [HOST_SCRIPT];
/**
 * How long a worker whose request timed out has to answer a ping before it counts as blocked.
 * Workers run niced: on a saturated node a free event loop may wait a second or more for CPU.
 */
const PING_GRACE_MS = 3000;
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
/**
 * Allocations the kernel lets a worker make past its memoryMiB (RLIMIT_DATA): the runner's
 * check every USAGE_SAMPLE_MS stops a worker over its limit, and this bounds how far it can get
 * in between.
 */
const MEMORY_HEADROOM_MIB = 16;
/** How often a running worker's memory and CPU are read from /proc. */
const USAGE_SAMPLE_MS = 25;
/**
 * How long a worker with no request in flight and no waitUntil work may run on before it is
 * stopped (SIGSTOP) until its next request; with waitUntil work pending, the lambda's timeout.
 */
const FREEZE_GRACE_MS = 100;
/** Workers run at this nice value, so the runner's own request handling comes first. */
const WORKER_NICE = 10;
/** The kernel's OOM killer takes a worker (the most it can be asked to) before the runner. */
const WORKER_OOM_SCORE_ADJ = '1000';
/** How a failed allocation reads, from V8, Buffer, WebAssembly or the C library. */
const ALLOCATION_FAILED = /array buffer allocation failed|failed to allocate memory|unable to grow instance memory|cannot allocate memory|out of memory/i;

const execFileAsync = promisify(execFile);

type State = 'unloaded' | 'starting' | 'ready' | 'stopping' | 'exited';

/** The lambda's env as the host installs it. */
function lambdaEnv(options: LambdaWorkerOptions): Record<string, string> {
  const env = { ...options.env };
  // NODE_OPTIONS would let the lambda's configuration choose Node flags, permissions included.
  delete env.NODE_OPTIONS;
  return env;
}

function spawnHost(profile: WorkerProfile, privateDir: string, spawnEnv: Record<string, string>): ChildProcess {
  const env = { ...spawnEnv };
  delete env.NODE_OPTIONS;
  const args = [
    '--permission',
    ...HOST_FILES.map((file) => `--allow-fs-read=${file}`),
    `--allow-fs-read=${privateDir}`,
    `--allow-fs-write=${privateDir}`,
    ...(profile.network === 'none' ? [] : ['--allow-net']),
    // Node's notice that --allow-net is experimental would reach every lambda's log.
    '--disable-warning=ExperimentalWarning',
    `--max-old-space-size=${profile.memoryMiB}`,
    // The young generation grows to 3 x 16 MiB by default: too much of a small lambda's memory.
    `--max-semi-space-size=${Math.min(16, Math.max(1, Math.floor(profile.memoryMiB / 8)))}`,
    HOST_SCRIPT,
  ];
  return spawn(process.execPath, args, {
    cwd: privateDir,
    env,
    // fd 3 is the message channel (see message-channel.ts).
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
}

/**
 * Holds the process to its profile from outside: a lower scheduling priority, first for the OOM
 * killer, and a kernel limit on its allocations (RLIMIT_DATA, which counts the V8 heap, Buffers,
 * typed arrays and WebAssembly memory alike; Node has no setrlimit, util-linux's prlimit does it
 * for another process of the same user). Returns the allocated size the limits count from.
 */
async function confineProcess(pid: number, usage: ProcessUsage, memoryMiB: number): Promise<MemoryUsage> {
  os.setPriority(pid, WORKER_NICE);
  await writeFile(`/proc/${pid}/oom_score_adj`, WORKER_OOM_SCORE_ADJ);
  const boot = usage.memory();
  if (!boot) throw new Error('the worker process is gone');
  const limitBytes = (boot.dataKiB + (memoryMiB + MEMORY_HEADROOM_MIB) * 1024) * 1024;
  try {
    await execFileAsync('prlimit', [`--pid=${pid}`, `--data=${limitBytes}:${limitBytes}`]);
  } catch (error) {
    throw new Error(`setting the worker's memory limit with prlimit (util-linux) failed: ${messageOf(error)}`, { cause: error });
  }
  return boot;
}

export class LambdaWorker {
  /** Set by load(); a worker without options serves nothing yet. */
  #options: LambdaWorkerOptions | undefined;
  readonly #profile: WorkerProfile;
  readonly #privateDir: string;
  readonly #child: ChildProcess;
  readonly #channel: MessageChannel<ParentMessage, HostMessage>;
  readonly #invocations = new Map<string, Invocation>();
  readonly #events = new EventEmitter();
  readonly #exited: Promise<void>;
  readonly #stderrTail: string[] = [];
  #state: State = 'unloaded';
  #killReason: string | undefined;
  /** Set when the worker went over its memory limit (found by the runner or by its own allocation failing), so its requests learn it. */
  #overMemory = false;
  #pinging = false;
  /** Requests that timed out before the host reported them begun: decided by the ping's outcome. */
  readonly #parked = new Set<Invocation>();
  #stateOperationsInFlight = 0;
  #idleSinceMs = Date.now();
  #invocationsStarted = 0;
  /** The highest invocation id the host reported begun (see the 'started' message). */
  #startedUpTo = -1;
  #logWindowStart = 0;
  #logLinesInWindow = 0;
  #logLinesDropped = 0;
  #usage: ProcessUsage | undefined;
  /** Allocated memory at boot, before any lambda code: memoryMiB counts from here. */
  #bootDataKiB = 0;
  #bootResidentKiB = 0;
  #sampler: NodeJS.Timeout | undefined;
  #lastCpuMillis = 0;
  #frozen = false;
  #freezeTimer: NodeJS.Timeout | undefined;
  #backgroundPending = false;

  /** Spawns the worker and loads the asset; rejects with LoadFailed when it cannot serve. */
  static async start(options: LambdaWorkerOptions): Promise<LambdaWorker> {
    const worker = await LambdaWorker.spawn(options.limits);
    return worker.load(options);
  }

  /**
   * Spawns a generic worker: its process, private directory, permissions and limits, no lambda
   * yet. spawnEnv is the process's env until load() replaces it with the lambda's; default none.
   */
  static async spawn(profile: WorkerProfile, spawnEnv: Record<string, string> = {}): Promise<LambdaWorker> {
    const privateDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-worker-'));
    const worker = new LambdaWorker(profile, privateDir, spawnEnv);
    // Resolves once the process has started and warmed up, so a load does not wait for either.
    const booted = await Promise.race([once(worker.#events, 'booted').then(() => true), worker.#exited.then(() => false)]);
    // The client sees the message; what the process printed goes only to the runner's log.
    if (!booted) throw new LambdaWorkerError('LoadFailed', `a worker process ${worker.#exitDescription()} while starting`, { cause: new Error(worker.#stderrTail.join('\n')) });
    try {
      worker.#usage = new ProcessUsage(worker.#child.pid!);
      const boot = await confineProcess(worker.#child.pid!, worker.#usage, profile.memoryMiB);
      worker.#bootDataKiB = boot.dataKiB;
      worker.#bootResidentKiB = boot.residentKiB;
    } catch (error) {
      worker.#kill('its limits could not be set');
      await worker.#exited;
      throw new LambdaWorkerError('LoadFailed', `a worker process could not be confined: ${messageOf(error)}`, { cause: error });
    }
    return worker;
  }

  private constructor(profile: WorkerProfile, privateDir: string, spawnEnv: Record<string, string>) {
    this.#profile = profile;
    this.#privateDir = privateDir;
    this.#child = spawnHost(profile, privateDir, spawnEnv);
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

  /** Loaded, and not stopping or exited. */
  get alive(): boolean {
    return this.#state === 'ready';
  }

  /**
   * Alive and not suspected of a blocked event loop: a worker that may be about to be killed
   * gets no new requests.
   */
  get accepting(): boolean {
    return this.#state === 'ready' && !this.#pinging;
  }

  /** Spawned, not exited, and no lambda loaded yet: load() may be called. */
  get unloaded(): boolean {
    return this.#state === 'unloaded';
  }

  get profile(): WorkerProfile {
    return this.#profile;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Settles once the process has exited and its private directory is removed. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /** Resolves the next time the last request in flight finishes, or once the process has exited. */
  nextIdle(): Promise<void> {
    return Promise.race([once(this.#events, 'idle').then(() => undefined), this.#exited]);
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
    if (profileKey(options.limits) !== profileKey(this.#profile)) {
      throw new Error(`the worker was spawned for ${profileKey(this.#profile)} (memory MiB/network), the lambda needs ${profileKey(options.limits)}`);
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
    // The import runs lambda code: from here on its usage is watched.
    this.#startSampling();
    await this.#load(assetPath);
    return this;
  }

  invoke(request: WorkerRequest): Promise<WorkerResponse> {
    const refusal = this.#refusalOf(request);
    if (refusal) return Promise.reject(refusal);
    this.#thaw();
    const invocation = new Invocation(
      String(this.#invocationsStarted++),
      request,
      { send: (message, parts) => this.#send(message, parts), finished: (id) => this.#onInvocationFinished(id) },
      { timeoutMs: this.#loaded.limits.timeoutSeconds * 1000, label: this.#label, onHeadTimeout: (timedOut) => this.#onHeadTimeout(timedOut) },
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
      this.#thaw();
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
      this.#scheduleFreeze();
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

  /**
   * Requests are handed to the host in order and the host reports which it began, so one the
   * host never reported began only if it is the first after the last report: it may be the one
   * keeping the event loop busy. Requests after it are still waiting in the channel.
   */
  #mayNotHaveBegun(invocation: Invocation): boolean {
    return Number(invocation.id) > this.#startedUpTo + 1;
  }

  /**
   * A request that began gets its Timeout. One still waiting behind a busy event loop is held
   * until the ping tells: a blocked worker is killed and the request goes to another worker.
   */
  #onHeadTimeout(invocation: Invocation) {
    if (this.#mayNotHaveBegun(invocation)) this.#parked.add(invocation);
    else invocation.timeOut();
    void this.#killIfBlocked();
  }

  /** A timeout may be a slow promise or a blocked event loop; only the latter gets no pong. */
  async #killIfBlocked() {
    if (this.#pinging || this.#state === 'exited') return;
    this.#pinging = true;
    this.#send({ type: 'ping' });
    const answered = await Promise.race([once(this.#events, 'pong').then(() => true), delay(PING_GRACE_MS, undefined, { ref: false }).then(() => false)]);
    if (!answered) return this.#kill(`a request timed out and the event loop did not answer within ${PING_GRACE_MS} ms`);
    this.#pinging = false;
    // The host has begun them by now (it answered after reading them); their time is up.
    for (const invocation of this.#parked) invocation.timeOut();
    this.#parked.clear();
    // Requests that waited for room while the worker was in doubt may come now.
    this.#options?.onRequestFinished?.();
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
      case 'started':
        this.#startedUpTo = Math.max(this.#startedUpTo, Number(message.upTo));
        return;
      case 'background':
        this.#backgroundPending = message.pending;
        return this.#scheduleFreeze();
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
        return this.#onResponseError(message.id, message.message);
    }
  }

  /** A handler's error that is a failed allocation (or comes with too much memory) is the memory limit's. */
  #onResponseError(id: string, message: string) {
    const memory = this.#usage?.memory();
    if (ALLOCATION_FAILED.test(message) || (memory && this.#overMemoryLimit(memory))) {
      // Its requests, this one included, fail with MemoryLimit once it is gone.
      return this.#killForMemory(memory, `a request failed allocating memory: ${message}`);
    }
    this.#invocations.get(id)?.fail(new LambdaWorkerError('HandlerError', `${this.#label}: ${message}`));
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
      this.#scheduleFreeze();
    }
    this.#options?.onRequestFinished?.();
  }

  /** Reads memory and CPU every USAGE_SAMPLE_MS while lambda code may run (loaded and not frozen). */
  #startSampling() {
    if (this.#sampler || !this.#usage) return;
    this.#lastCpuMillis = this.#usage.cpuMillis() ?? this.#lastCpuMillis;
    this.#sampler = setInterval(() => this.#checkUsage(), USAGE_SAMPLE_MS).unref();
  }

  #stopSampling() {
    clearInterval(this.#sampler);
    this.#sampler = undefined;
  }

  #checkUsage() {
    const usage = this.#usage!;
    const memory = usage.memory();
    if (!memory) return;
    if (this.#overMemoryLimit(memory)) return this.#killForMemory(memory, 'found over its limit');
    const cpuMillis = usage.cpuMillis();
    if (cpuMillis === undefined) return;
    const used = cpuMillis - this.#lastCpuMillis;
    this.#lastCpuMillis = cpuMillis;
    const budget = this.#options?.limits.cpuMillis;
    if (used <= 0 || this.inFlight === 0 || budget === undefined) return;
    // Which request the CPU went to is known only inside the worker; each is charged its share.
    const share = used / this.inFlight;
    let overBudget = false;
    for (const invocation of [...this.#invocations.values()]) {
      invocation.cpuMillis += share;
      if (invocation.cpuMillis <= budget) continue;
      overBudget = true;
      invocation.cancel(new LambdaWorkerError('CpuLimit', `${this.#label}: the request used more than its CPU budget of ${budget} ms (spec.cpuMillis)`));
    }
    if (!overBudget) return;
    // Code that spins cannot be stopped from outside but by ending its process: this worker
    // takes no more requests, finishes the others, and goes (at once, if its event loop is stuck).
    void this.stop();
    void this.#killIfBlocked();
  }

  #overMemoryLimit(memory: MemoryUsage): boolean {
    return memory.dataKiB - this.#bootDataKiB > this.#profile.memoryMiB * 1024;
  }

  #killForMemory(memory: MemoryUsage | undefined, how: string) {
    this.#overMemory = true;
    const figures = memory
      ? `; above its boot footprint it had allocated ${mib(memory.dataKiB - this.#bootDataKiB)} MiB, its resident size peaked at ${mib(memory.peakResidentKiB - this.#bootResidentKiB)} MiB`
      : '';
    this.#kill(`memory limit of ${this.#profile.memoryMiB} MiB: ${how}${figures}`);
  }

  /**
   * An idle worker is stopped (SIGSTOP) after a short grace, or once waitUntil work has had the
   * lambda's timeout: code left running after its answer (timers, loops) gets no CPU until the
   * next request, which continues the process. One timer at a time, checked when it fires.
   */
  #scheduleFreeze() {
    if (this.#freezeTimer || !this.#mayFreeze()) return;
    this.#freezeTimer = setTimeout(() => {
      this.#freezeTimer = undefined;
      if (!this.#mayFreeze()) return;
      // A request came and went, or waitUntil work started, since the timer was set.
      if (Date.now() < this.#freezeAt()) return this.#scheduleFreeze();
      this.#freeze();
    }, Math.max(0, this.#freezeAt() - Date.now())).unref();
  }

  #mayFreeze(): boolean {
    return this.#state === 'ready' && !this.#frozen && this.inFlight === 0;
  }

  /** When an idle worker is stopped: after the grace, or after the lambda's timeout while waitUntil work is pending. */
  #freezeAt(): number {
    return this.#idleSinceMs + (this.#backgroundPending ? this.#loaded.limits.timeoutSeconds * 1000 : FREEZE_GRACE_MS);
  }

  #freeze() {
    this.#stopSampling();
    this.#frozen = this.#child.kill('SIGSTOP');
  }

  #thaw() {
    clearTimeout(this.#freezeTimer);
    this.#freezeTimer = undefined;
    if (!this.#frozen) return;
    this.#frozen = false;
    this.#child.kill('SIGCONT');
    this.#startSampling();
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
    // V8's out-of-memory report is followed by a native stack longer than the tail.
    if (ALLOCATION_FAILED.test(line)) this.#overMemory = true;
    this.#stderrTail.push(line);
    if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
  }

  #exitDescription(): string {
    const { exitCode, signalCode } = this.#child;
    const how = signalCode ? `killed by ${signalCode}` : `exited with code ${exitCode}`;
    return this.#killReason ? `${how}: ${this.#killReason}` : how;
  }

  #exitError(): LambdaWorkerError {
    if (this.#overMemory) {
      const how = this.#killReason ?? 'the worker ran out of memory';
      return new LambdaWorkerError('MemoryLimit', `${this.#label}: the worker went over its memory limit of ${this.#profile.memoryMiB} MiB (${how})`);
    }
    return new LambdaWorkerError('WorkerExited', `${this.#label}: the worker ${this.#exitDescription()}`);
  }

  async #onExit() {
    this.#state = 'exited';
    this.#stopSampling();
    clearTimeout(this.#freezeTimer);
    this.#usage?.close();
    const error = this.#exitError();
    const notStarted = new LambdaWorkerError(error.kind, error.message, { notStarted: true });
    for (const invocation of [...this.#invocations.values()]) {
      if (this.#mayNotHaveBegun(invocation)) invocation.failUnstarted(notStarted);
      else invocation.fail(error);
    }
    this.#parked.clear();
    await rm(this.#privateDir, { recursive: true, force: true });
  }
}

function mib(kib: number): number {
  return Math.round(kib / 1024);
}
