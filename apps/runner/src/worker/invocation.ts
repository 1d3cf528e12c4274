// One request in flight through a worker, as the runner sees it: the response head as a promise,
// then the response body as an async iterable that pulls chunk by chunk from the worker.
import type { ParentMessage } from './protocol.ts';
import { LambdaWorkerError, messageOf, type WorkerRequest, type WorkerResponse } from './worker-types.ts';

export interface InvocationChannel {
  send(message: ParentMessage, parts?: Uint8Array[]): void;
  /** Called once, when the invocation is over for the runner (finished, failed or cancelled). */
  finished(id: string): void;
}

export interface InvocationLimits {
  /**
   * How long the handler has to send the response head, and how long the response body may then
   * go without a chunk, before the request is cancelled (Timeout).
   */
  timeoutMs: number;
  /**
   * Called when the head did not come in time: the worker's event loop may be blocked. The
   * invocation waits for what it decides: timeOut(), or failUnstarted() once the worker is gone.
   */
  onHeadTimeout: (invocation: Invocation) => void;
  /** Names the lambda in error messages. */
  label: string;
}

export class Invocation {
  readonly id: string;
  readonly #channel: InvocationChannel;
  readonly #limits: InvocationLimits;
  readonly #head = Promise.withResolvers<WorkerResponse>();
  readonly #headTimer: NodeJS.Timeout;
  readonly #requestBody: AsyncIterator<Uint8Array> | undefined;
  #headReceived = false;
  #done = false;
  #pendingChunk: PromiseWithResolvers<Uint8Array | null> | undefined;
  #failure: LambdaWorkerError | undefined;
  /** CPU time charged to this request so far (see LambdaWorker). */
  cpuMillis = 0;

  /** id names the invocation on the channel; the client's request id need not be unique. */
  constructor(id: string, request: WorkerRequest, channel: InvocationChannel, limits: InvocationLimits) {
    this.id = id;
    this.#channel = channel;
    this.#limits = limits;
    this.#headTimer = setTimeout(() => limits.onHeadTimeout(this), limits.timeoutMs);
    this.#requestBody = request.body?.[Symbol.asyncIterator]();
  }

  /** Resolves with the response head; rejects with a LambdaWorkerError. */
  get response(): Promise<WorkerResponse> {
    return this.#head.promise;
  }

  /** Over for the runner: finished, failed or cancelled. */
  get done(): boolean {
    return this.#done;
  }

  async sendNextRequestBodyChunk(): Promise<void> {
    if (!this.#requestBody || this.#done) return;
    try {
      const next = await this.#requestBody.next();
      if (next.done) this.#channel.send({ type: 'request-body-end', id: this.id });
      else this.#channel.send({ type: 'request-body-chunk', id: this.id }, [next.value]);
    } catch (error) {
      this.#channel.send({ type: 'request-body-error', id: this.id, message: `reading the request body failed: ${messageOf(error)}` });
    }
  }

  receiveHead(status: number, headers: Array<[string, string]>, chunks: Uint8Array[], end: boolean) {
    this.#headReceived = true;
    clearTimeout(this.#headTimer);
    if (end) this.#finish();
    this.#head.resolve({ status, headers, body: this.#responseBody(chunks), wholeBody: end ? chunks : undefined });
  }

  receiveChunk(chunk: Uint8Array) {
    this.#pendingChunk?.resolve(chunk);
  }

  receiveEnd() {
    this.#finish();
    this.#pendingChunk?.resolve(null);
  }

  fail(error: LambdaWorkerError) {
    if (this.#done) return;
    this.#finish();
    this.#failure = error;
    if (!this.#headReceived) this.#head.reject(error);
    this.#pendingChunk?.reject(error);
  }

  /** The handler sent no response head within the timeout. */
  timeOut() {
    this.cancel(new LambdaWorkerError('Timeout', `${this.#limits.label}: no response within ${this.#limits.timeoutMs / 1000} s`));
  }

  /**
   * Fails a request the worker never began (error.notStarted), leaving its request body unread
   * and open, so that another worker can serve the same request.
   */
  failUnstarted(error: LambdaWorkerError) {
    if (this.#done) return;
    this.#finish({ keepRequestBody: true });
    this.#failure = error;
    this.#head.reject(error);
  }

  /** Gives up on the request: the worker is told to abort it, later messages for it are ignored. */
  cancel(error: LambdaWorkerError) {
    if (this.#done) return;
    this.fail(error);
    this.#channel.send({ type: 'cancel', id: this.id });
  }

  async *#responseBody(first: Uint8Array[]): AsyncGenerator<Uint8Array> {
    try {
      yield* first;
      for (;;) {
        if (this.#failure) throw this.#failure;
        if (this.#done) return;
        const chunk = await this.#nextChunk();
        if (chunk === null) return;
        yield chunk;
      }
    } finally {
      if (!this.#done) this.cancel(new LambdaWorkerError('HandlerError', 'the runner stopped reading the response body'));
    }
  }

  /**
   * The next chunk of the response body, or null at its end. A handler that sent its head and
   * then nothing for the idle timeout is cancelled: a stream that stalls must not hold the
   * request (and its connection) forever; one that keeps sending may run as long as it likes.
   */
  #nextChunk(): Promise<Uint8Array | null> {
    this.#pendingChunk = Promise.withResolvers();
    this.#channel.send({ type: 'response-body-pull', id: this.id });
    const { timeoutMs, label } = this.#limits;
    const idle = setTimeout(() => this.cancel(new LambdaWorkerError('Timeout', `${label}: the response body sent nothing for ${timeoutMs / 1000} s`)), timeoutMs);
    return this.#pendingChunk.promise.finally(() => clearTimeout(idle));
  }

  #finish(options: { keepRequestBody?: boolean } = {}) {
    this.#done = true;
    clearTimeout(this.#headTimer);
    // Stops the request body's source; its own failure to stop concerns nobody here.
    if (!options.keepRequestBody) Promise.resolve(this.#requestBody?.return?.()).catch(() => undefined);
    this.#channel.finished(this.id);
  }
}
