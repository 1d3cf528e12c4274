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
      /** Names the call on the channel; requestId is the client's, which need not be unique. */
      id: string;
      requestId: string;
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
  /**
   * The handlers of every request up to the one with this id (ids count up from 0) have been
   * called. Sent with the host's next write after it calls handlers, so a request the runner sent
   * and the host never reported has not begun (but for the first after the last report, which
   * may be the one keeping the event loop busy).
   */
  | { type: 'started'; upTo: string }
  /** Whether waitUntil work is pending; sent when that changes. */
  | { type: 'background'; pending: boolean }
  | { type: 'pong' };

const isString = (value: unknown): value is string => typeof value === 'string';
function isHeaderList(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const pair of value) if (!Array.isArray(pair) || pair.length !== 2 || !isString(pair[0]) || !isString(pair[1])) return false;
  return true;
}

/**
 * What is wrong with a message from a worker, if anything. The worker runs the lambda's code,
 * which can write to the channel itself, so the runner acts on no message it has not checked.
 */
export function problemWithHostMessage(message: unknown, parts: Uint8Array[]): string | undefined {
  const m = message as Partial<Record<string, unknown>> | null;
  if (typeof m !== 'object' || m === null || !isString(m.type)) return 'a message without a type';
  const needsId = m.type !== 'booted' && m.type !== 'ready' && m.type !== 'load-failed' && m.type !== 'log' && m.type !== 'pong' && m.type !== 'started' && m.type !== 'background';
  if (needsId && !isString(m.id)) return `a ${m.type} message without an id`;
  switch (m.type) {
    case 'booted':
    case 'ready':
    case 'pong':
    case 'request-body-pull':
    case 'response-end':
      return undefined;
    case 'load-failed':
    case 'response-error':
      return isString(m.message) ? undefined : `a ${m.type} message without a message`;
    case 'log':
      return isString(m.text) && (m.stream === 'stdout' || m.stream === 'stderr') ? undefined : 'a malformed log message';
    case 'started':
      return isString(m.upTo) && Number.isSafeInteger(Number(m.upTo)) ? undefined : 'a started message without a request id';
    case 'background':
      return typeof m.pending === 'boolean' ? undefined : 'a background message without pending';
    case 'state':
      return typeof m.operation === 'object' && m.operation !== null ? undefined : 'a state message without an operation';
    case 'response-head':
      if (!Number.isInteger(m.status) || (m.status as number) < 200 || (m.status as number) > 599) return `a response status of ${String(m.status)}`;
      return isHeaderList(m.headers) && typeof m.end === 'boolean' ? undefined : 'a malformed response head';
    case 'response-body-chunk':
      return parts.length === 1 ? undefined : 'a body chunk message without exactly one part';
    default:
      return `a message of unknown type ${JSON.stringify(m.type).slice(0, 40)}`;
  }
}
