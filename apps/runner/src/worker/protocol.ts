// Messages between LambdaWorker (the runner's side) and worker-host.ts (the lambda's process),
// sent over the IPC channel with the 'advanced' serialization, so Uint8Array chunks travel as they are.
// Both bodies are pulled one chunk at a time, which gives backpressure in both directions.

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
  | { type: 'request-body-chunk'; id: string; chunk: Uint8Array }
  | { type: 'request-body-end'; id: string }
  | { type: 'request-body-error'; id: string; message: string }
  | { type: 'response-body-pull'; id: string }
  | { type: 'cancel'; id: string }
  | { type: 'ping' }
  | { type: 'stop' };

export type HostMessage =
  | { type: 'ready' }
  | { type: 'load-failed'; message: string }
  | { type: 'request-body-pull'; id: string }
  | { type: 'response-head'; id: string; status: number; headers: Array<[string, string]> }
  | { type: 'response-body-chunk'; id: string; chunk: Uint8Array }
  | { type: 'response-end'; id: string }
  | { type: 'response-error'; id: string; message: string }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string; requestId?: string }
  | { type: 'pong' };
