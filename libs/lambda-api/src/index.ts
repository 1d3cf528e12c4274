// What a lambda sees: the handler shapes, its context, and the state-table API.
// Lambda source uses these with `import type`; at run time the runner's worker provides them.
// The one runtime value here is StateError, which the worker throws (see docs/state-tables.md).

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
