// Messages between LambdaWorker (the runner's side) and worker-host.ts (the lambda's process),
// sent over a MessageChannel. Body chunks travel as the message's binary parts, not in the message.
// Both bodies are pulled one chunk at a time, which gives backpressure in both directions.

import type { StateOperation, StateOutcome } from '@kublambda/state-tables';

export interface LambdaIdentity {
  namespace: string;
  name: string;
}

export type ParentMessage =
  /** env replaces the process's env (the spawn-time one) before the asset is imported. */
  | { type: 'load'; assetUrl: string; lambda: LambdaIdentity; env: Record<string, string> }
  | {
      type: 'request';
      id: string;
      method: string;
      url: string;
      headers: Array<[string, string]>;
      hasBody: boolean;
      clientAddress: string;
    }
  /** Parts: the chunk. */
  | { type: 'request-body-chunk'; id: string }
  | { type: 'request-body-end'; id: string }
  | { type: 'request-body-error'; id: string; message: string }
  | { type: 'response-body-pull'; id: string }
  | { type: 'cancel'; id: string }
  /** The answer to the worker's state message with the same id. */
  | { type: 'state-result'; id: string; outcome: StateOutcome }
  | { type: 'ping' }
  | { type: 'stop' };

export type HostMessage =
  /** The process has started and warmed up: it can load a lambda. */
  | { type: 'booted' }
  /** The lambda is loaded. */
  | { type: 'ready' }
  | { type: 'load-failed'; message: string }
  | { type: 'request-body-pull'; id: string }
  /**
   * Parts: the start of the body that was ready with the head. end says that is the whole body,
   * so a small response takes one message and the runner pulls only what is left of a larger one.
   */
  | { type: 'response-head'; id: string; status: number; headers: Array<[string, string]>; end: boolean }
  /** Parts: the chunk. */
  | { type: 'response-body-chunk'; id: string }
  | { type: 'response-end'; id: string }
  | { type: 'response-error'; id: string; message: string }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string; requestId?: string }
  /** A state-table operation for the runner to perform; requestId is the request it serves, if any. */
  | { type: 'state'; id: string; requestId?: string; operation: StateOperation }
  | { type: 'pong' };
