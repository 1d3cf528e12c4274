// What a lambda sees: the handler shapes, its context, and the state-table API.
// Lambda source uses the types with `import type`; at run time the runner's worker provides them.
// The runtime values are StateError, which the worker throws (see docs/state-tables.md), and
// readResourceEvent, which the builder bundles into a lambda that imports it: so this file
// imports nothing.

/** A JSON value: what a state table stores. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The default export of a lambda's entrypoint: a function, or an object with `fetch`. */
export type Handler = HandlerFunction | FetchHandler;

export type HandlerFunction = (request: Request, context: LambdaContext) => Response | Promise<Response>;

export interface FetchHandler {
  fetch(request: Request, env: LambdaContext['env'], context: LambdaContext): Response | Promise<Response>;
}

export interface LambdaContext {
  /** The id of this request, also in the runner's log lines and the `x-request-id` header. */
  requestId: string;
  lambda: { namespace: string; name: string };
  /** The lambda's `spec.env`; the process sees nothing else. */
  env: Readonly<Record<string, string | undefined>>;
  /** The address of the HTTP client, as the runner saw it. */
  clientAddress: string;
  /** Keeps the worker alive until `promise` settles, after the response has been sent. */
  waitUntil(promise: Promise<unknown>): void;
  state: LambdaState;
}

export interface LambdaState {
  /**
   * One of the tables named in `spec.stateTables`; any other name fails with `TableNotDeclared`.
   * Lambdas in one namespace that declare the same name share the table.
   */
  table(name: string): StateTable;
}

/**
 * A durable key-value table. Keys are non-empty strings of at most 1 KiB (UTF-8); values are
 * JSON of at most 256 KiB serialized. Every failure is a StateError.
 */
export interface StateTable {
  /** The entry, or null when there is none (or it expired). */
  get(key: string): Promise<StateEntry | null>;
  /** Writes the value and returns its new version. See PutOptions for TTL and compare-and-set. */
  put(key: string, value: JsonValue, options?: PutOptions): Promise<{ version: number }>;
  /** True when an entry was removed. With `ifVersion`, removes it only at that version. */
  delete(key: string, options?: { ifVersion?: number }): Promise<boolean>;
  /**
   * Atomically adds `by` (default 1) to a number and returns the result; a missing entry counts
   * as 0. An existing entry keeps its expiry; `ttlSeconds` applies only when the entry is created
   * (a counter for a time window). A value that is not a number fails with `NotANumber`.
   */
  increment(key: string, by?: number, options?: { ttlSeconds?: number }): Promise<number>;
  /** Entries in key order (UTF-8 byte order), one page at a time. */
  list(options?: ListOptions): Promise<ListPage>;
}

export interface StateEntry {
  key: string;
  value: JsonValue;
  /** Changes on every write; compare-and-set with `ifVersion`. Versions only grow within a table. */
  version: number;
  /** When the entry expires, in milliseconds since the epoch; absent when it does not. */
  expiresAt?: number;
}

export interface PutOptions {
  /** Expire the entry this many seconds from now. Without it, the entry does not expire (a previous TTL is removed). */
  ttlSeconds?: number;
  /** Write only if the entry is at this version; 0 means "only if there is no entry". Otherwise StateConflict. */
  ifVersion?: number;
}

export interface ListOptions {
  /** Only keys starting with this. */
  prefix?: string;
  /** Most entries in one page: 1 to 1000, default 100. */
  limit?: number;
  /** From a previous page, to continue after it. */
  cursor?: string;
}

export interface ListPage {
  entries: StateEntry[];
  /**
   * Present when there may be more: pass it back as `cursor`. A page can be shorter than
   * `limit` (even empty) and still have a cursor, when expired entries were skipped.
   */
  cursor?: string;
}

export const STATE_ERROR_CODES = [
  /** An `ifVersion` write or delete found another version. */
  'StateConflict',
  /** The serialized value is larger than the limit. */
  'ValueTooLarge',
  /** The table is not in the lambda's `spec.stateTables`. */
  'TableNotDeclared',
  /** The key is empty, too long or not valid Unicode. */
  'InvalidKey',
  /** Options or value out of range or of the wrong type (the message says which). */
  'InvalidArgument',
  /** `increment` on a value that is not a number, or a result that is not finite. */
  'NotANumber',
  /** The state store cannot be reached; the outcome of a write in flight is unknown. Retry later. */
  'StateUnavailable',
] as const;

export type StateErrorCode = (typeof STATE_ERROR_CODES)[number];

/** Every state-table failure; check `code` (or `name === 'StateError'` across realms). */
export class StateError extends Error {
  readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string) {
    super(message);
    this.name = 'StateError';
    this.code = code;
  }
}

export function isStateErrorCode(code: unknown): code is StateErrorCode {
  return (STATE_ERROR_CODES as readonly unknown[]).includes(code);
}

// Resource-watch triggers (docs/watch-triggers.md): each matching change to a watched
// Kubernetes object reaches the lambda as a POST carrying a CloudEvent in HTTP binary mode.

export type ResourceEventKind = 'ADDED' | 'MODIFIED' | 'DELETED';

/** The CloudEvent `type` of each kind of change. */
export const RESOURCE_EVENT_TYPES: Readonly<Record<ResourceEventKind, string>> = {
  ADDED: 'io.kublambda.resource.added',
  MODIFIED: 'io.kublambda.resource.modified',
  DELETED: 'io.kublambda.resource.deleted',
};

/** The kind of change a CloudEvent `type` stands for; undefined for any other type. */
export function resourceEventKindOf(cloudEventType: string | undefined): ResourceEventKind | undefined {
  return (Object.keys(RESOURCE_EVENT_TYPES) as ResourceEventKind[]).find((kind) => RESOURCE_EVENT_TYPES[kind] === cloudEventType);
}

/** A Kubernetes object as JSON; `T` narrows it for the kind a trigger watches. */
export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; [field: string]: unknown };
  [field: string]: unknown;
}

export interface ResourceEvent<T extends KubernetesObject = KubernetesObject> {
  /** The CloudEvent id: `<uid>/<resourceVersion>`, or `<uid>/deleted`; a redelivery carries the same id. */
  id: string;
  type: ResourceEventKind;
  /** The API server and the resource path, for example https://10.0.0.1/api/v1/namespaces/shop/configmaps. */
  source: string;
  /** `<namespace>/<name>` of the object. */
  subject: string;
  /** When the watcher saw the change (RFC 3339). */
  time: string;
  /** Which of `spec.triggers.watch` matched, by position. */
  triggerIndex: number;
  /** The object after the change; for DELETED, its last state. */
  object: T;
  /** The object before the change (MODIFIED, DELETED); null for ADDED, or when it was too large to send (see oldObjectOmitted). */
  oldObject: T | null;
  /** True when the object before the change was larger than 256 KiB and left out. */
  oldObjectOmitted: boolean;
}

/** The request is not a resource event: it lacks the CloudEvent headers a watch trigger sends. */
export class NotAResourceEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAResourceEvent';
  }
}

/**
 * Reads a watch trigger's request as a ResourceEvent. Throws NotAResourceEvent for any other
 * request (an HTTP call, a malformed event), so one handler can serve both.
 */
export async function readResourceEvent<T extends KubernetesObject = KubernetesObject>(request: Request): Promise<ResourceEvent<T>> {
  const header = (name: string) => {
    const value = request.headers.get(`ce-${name}`);
    // The CloudEvents HTTP binding percent-encodes attribute values.
    return value === null ? undefined : decodeURIComponent(value);
  };
  const cloudEventType = header('type');
  const type = resourceEventKindOf(cloudEventType);
  if (!type) throw new NotAResourceEvent(cloudEventType ? `ce-type ${cloudEventType} is not a resource event (io.kublambda.resource.added|modified|deleted)` : 'the request has no ce-type header: it is not a CloudEvent');
  const id = header('id');
  if (!id) throw new NotAResourceEvent('the request has no ce-id header');
  let object: T;
  let oldObject: T | null = null;
  try {
    object = (await request.json()) as T;
    const old = header('oldobject');
    if (old !== undefined) oldObject = JSON.parse(old) as T;
  } catch (error) {
    throw new NotAResourceEvent(`the resource event ${id} does not carry JSON: ${(error as Error).message}`);
  }
  return {
    id,
    type,
    source: header('source') ?? '',
    subject: header('subject') ?? '',
    time: header('time') ?? '',
    triggerIndex: Number(header('kublambdatrigger') ?? 0),
    object,
    oldObject,
    oldObjectOmitted: header('oldobjectomitted') !== undefined,
  };
}
