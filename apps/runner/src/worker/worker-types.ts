import { types } from 'node:util';
import type { StateOutcome } from '@kublambda/state-tables';

/** What a worker process is spawned with: a pooled worker serves only lambdas of its profile. */
export interface WorkerProfile {
  /**
   * Memory the lambda may allocate on top of the worker's own footprint at boot: the V8 heap,
   * Buffers, typed arrays, WebAssembly memory and native allocations together.
   */
  memoryMiB: number;
  /** 'none': the process runs without network access. Default 'outbound'. */
  network?: 'outbound' | 'none';
}

export interface WorkerLimits extends WorkerProfile {
  timeoutSeconds: number;
  /** Requests in flight at once; one more is refused as Overloaded. */
  concurrency: number;
  /** CPU time one request may use; the worker's CPU is charged to its requests in equal parts. Default none. */
  cpuMillis?: number;
}

/** Two profiles are the same when their key is. */
export function profileKey(profile: WorkerProfile): string {
  return `${profile.memoryMiB}/${profile.network ?? 'outbound'}`;
}

export interface WorkerLogLine {
  stream: 'stdout' | 'stderr';
  text: string;
  /** Set when the line came from console.* while the handler served this request. */
  requestId?: string;
}

export interface LambdaWorkerOptions {
  /** The lambda's single-file ES module; copied into the worker's private directory. */
  assetPath: string;
  limits: WorkerLimits;
  /** The lambda's own environment: the worker's process.env is exactly this. */
  env: Record<string, string>;
  lambda: { namespace: string; name: string };
  onLog?: (line: WorkerLogLine) => void;
  /** Called each time a request leaves the worker (answered, failed or cancelled). */
  onRequestFinished?: () => void;
  /**
   * Performs a state-table operation the lambda asked for (unchecked input from the worker).
   * Without it every operation fails with StateUnavailable.
   */
  performStateOperation?: (operation: unknown, requestId: string | undefined) => Promise<StateOutcome>;
}

export interface WorkerRequest {
  requestId: string;
  method: string;
  /** Absolute, as the lambda should see it. */
  url: string;
  /** Repeated headers are kept as repeated entries. */
  headers: Array<[string, string]>;
  body: AsyncIterable<Uint8Array> | null;
  clientAddress: string;
  /** Cancelled when the client has gone away: the request is then cancelled in the worker too. */
  cancellation?: Cancellation;
}

/**
 * A request's cancellation: whoever is working on the request sets onCancel. A plain object,
 * because aborting an AbortController costs more than the rest of a small request.
 */
export interface Cancellation {
  cancelled: boolean;
  onCancel?: () => void;
}

export function cancelRequest(cancellation: Cancellation): void {
  if (cancellation.cancelled) return;
  cancellation.cancelled = true;
  cancellation.onCancel?.();
}

export interface WorkerResponse {
  status: number;
  headers: Array<[string, string]>;
  /** Pulled from the worker chunk by chunk; stopping early cancels the request in the worker. */
  body: AsyncIterable<Uint8Array>;
  /** Set when the whole body came with the head (body then yields the same chunks). */
  wholeBody?: Uint8Array[];
}

export type LambdaWorkerErrorKind = 'Timeout' | 'HandlerError' | 'WorkerExited' | 'MemoryLimit' | 'CpuLimit' | 'Overloaded' | 'LoadFailed' | 'ClientClosed';

const STATUS_OF = {
  Timeout: 504,
  HandlerError: 502,
  WorkerExited: 502,
  MemoryLimit: 503,
  CpuLimit: 503,
  Overloaded: 503,
  LoadFailed: 502,
  // Nobody receives it; the code tells the request's metrics and logs what happened.
  ClientClosed: 499,
} as const satisfies Record<LambdaWorkerErrorKind, 499 | 502 | 503 | 504>;

export class LambdaWorkerError extends Error {
  readonly kind: LambdaWorkerErrorKind;
  readonly status: 499 | 502 | 503 | 504;
  /**
   * The worker went away before its handler began this request, so another worker may serve it
   * without the lambda seeing it twice.
   */
  readonly notStarted: boolean;

  constructor(kind: LambdaWorkerErrorKind, message: string, options?: ErrorOptions & { notStarted?: boolean }) {
    super(message, options);
    this.name = 'LambdaWorkerError';
    this.kind = kind;
    this.status = STATUS_OF[kind];
    this.notStarted = options?.notStarted ?? false;
  }
}

/** The message of an error from any realm (Jest runs tests in a realm of its own). */
export function messageOf(error: unknown): string {
  return types.isNativeError(error) || error instanceof Error ? error.message : String(error);
}
