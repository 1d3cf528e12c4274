import { StateError, type JsonValue, type ListPage, type StateEntry, type StateErrorCode } from '@kublambda/lambda-api';
import type { StateStore } from './state-store.ts';

// The state operations a worker asks the runner to perform, as plain JSON over the worker's
// channel: the worker never holds Redis credentials. The runner answers each with an outcome.

export type StateOperation =
  | { op: 'get'; table: string; key: string }
  | { op: 'put'; table: string; key: string; value: JsonValue; ttlSeconds?: number; ifVersion?: number }
  | { op: 'delete'; table: string; key: string; ifVersion?: number }
  | { op: 'increment'; table: string; key: string; by?: number; ttlSeconds?: number }
  | { op: 'list'; table: string; prefix?: string; limit?: number; cursor?: string };

/** What each operation answers with when it succeeds. */
export interface StateResults {
  get: StateEntry | null;
  put: { version: number };
  delete: boolean;
  increment: number;
  list: ListPage;
}

export type StateResult = StateResults[StateOperation['op']];

export interface StateFailure {
  code: StateErrorCode;
  message: string;
}

export type StateOutcome<T = StateResult> = { ok: true; result: T } | { ok: false; error: StateFailure };

/** For log lines and messages: what the operation does to which key of which table. */
export function describeStateOperation(operation: StateOperation): string {
  const table = `table "${operation.table}"`;
  return operation.op === 'list' ? `list ${table}` : `${operation.op} "${operation.key}" in ${table}`;
}

/**
 * Performs one operation for a lambda of `namespace` that declares `declaredTables`. The
 * operation comes from the lambda's worker, so it is checked as untrusted input. Expected
 * failures (a conflict, a limit, an undeclared table, Redis unavailable) come back as
 * `{ok: false, error: {code, message}}`; it throws only on defects (say, a Redis reply this code
 * does not understand), which the caller logs and reports to the lambda as a generic failure.
 */
export async function executeStateOperation(store: StateStore, declaredTables: readonly string[], namespace: string, operation: unknown): Promise<StateOutcome> {
  try {
    const checked = checkOperation(operation);
    if (!declaredTables.includes(checked.table)) {
      const declared = declaredTables.length > 0 ? `it declares ${declaredTables.map((name) => `"${name}"`).join(', ')}` : 'it declares none (spec.stateTables)';
      throw new StateError('TableNotDeclared', `state table "${checked.table}" is not declared by this lambda: ${declared}`);
    }
    const table = store.table(namespace, checked.table);
    switch (checked.op) {
      case 'get':
        return { ok: true, result: await table.get(checked.key) };
      case 'put':
        return { ok: true, result: await table.put(checked.key, checked.value, { ttlSeconds: checked.ttlSeconds, ifVersion: checked.ifVersion }) };
      case 'delete':
        return { ok: true, result: await table.delete(checked.key, { ifVersion: checked.ifVersion }) };
      case 'increment':
        return { ok: true, result: await table.increment(checked.key, checked.by, { ttlSeconds: checked.ttlSeconds }) };
      case 'list':
        return { ok: true, result: await table.list({ prefix: checked.prefix, limit: checked.limit, cursor: checked.cursor }) };
    }
  } catch (error) {
    if (error instanceof StateError) return { ok: false, error: { code: error.code, message: error.message } };
    throw error;
  }
}

const OPERATIONS = ['get', 'put', 'delete', 'increment', 'list'];
const FIELDS: Record<string, readonly string[]> = {
  get: ['op', 'table', 'key'],
  put: ['op', 'table', 'key', 'value', 'ttlSeconds', 'ifVersion'],
  delete: ['op', 'table', 'key', 'ifVersion'],
  increment: ['op', 'table', 'key', 'by', 'ttlSeconds'],
  list: ['op', 'table', 'prefix', 'limit', 'cursor'],
};

// The shape only: the store checks each field's value and says what is wrong with it.
function checkOperation(operation: unknown): StateOperation {
  if (typeof operation !== 'object' || operation === null) throw new StateError('InvalidArgument', 'a state operation must be an object');
  const { op, table } = operation as { op?: unknown; table?: unknown };
  if (typeof op !== 'string' || !OPERATIONS.includes(op)) throw new StateError('InvalidArgument', `unknown state operation ${JSON.stringify(op)}: one of ${OPERATIONS.join(', ')}`);
  if (typeof table !== 'string') throw new StateError('InvalidArgument', `${op}: the table name must be a string`);
  const unknown = Object.keys(operation).filter((field) => !FIELDS[op]!.includes(field));
  if (unknown.length > 0) throw new StateError('InvalidArgument', `${op}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
  if (op !== 'list' && !('key' in operation)) throw new StateError('InvalidKey', `${op}: a key is required`);
  return operation as StateOperation;
}

