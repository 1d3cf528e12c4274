// A lambda's state tables as its context offers them (context.state.table(name)). Each call
// goes to the runner over the worker's channel and comes back as an outcome: the worker never
// holds Redis credentials, and the runner checks every operation, the table included.
// The worker host imports this file, so it may import nothing but node built-ins and types.
import type { JsonValue, LambdaState, ListOptions, ListPage, PutOptions, StateEntry, StateErrorCode, StateTable } from '@kublambda/lambda-api';
import type { StateOperation, StateOutcome } from '@kublambda/state-tables';

/**
 * What a failed state call throws; lambdas check `code` (or `name === 'StateError'`). The same
 * as @kublambda/lambda-api's, which the worker cannot load.
 */
export class StateError extends Error {
  readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string) {
    super(message);
    this.name = 'StateError';
    this.code = code;
  }
}

export type PerformStateOperation = (operation: StateOperation) => Promise<StateOutcome>;

export function lambdaState(perform: PerformStateOperation): LambdaState {
  async function call<T>(operation: StateOperation): Promise<T> {
    const outcome = await perform(operation);
    if (!outcome.ok) throw new StateError(outcome.error.code, outcome.error.message);
    return outcome.result as T;
  }
  return {
    table(table: string): StateTable {
      // Options are copied field by field: the runner refuses operations with fields it does not know.
      return {
        get: (key: string) => call<StateEntry | null>({ op: 'get', table, key }),
        put: (key: string, value: JsonValue, options: PutOptions = {}) =>
          call<{ version: number }>({ op: 'put', table, key, value, ttlSeconds: options.ttlSeconds, ifVersion: options.ifVersion }),
        delete: (key: string, options: { ifVersion?: number } = {}) => call<boolean>({ op: 'delete', table, key, ifVersion: options.ifVersion }),
        increment: (key: string, by?: number, options: { ttlSeconds?: number } = {}) =>
          call<number>({ op: 'increment', table, key, by, ttlSeconds: options.ttlSeconds }),
        list: (options: ListOptions = {}) => call<ListPage>({ op: 'list', table, prefix: options.prefix, limit: options.limit, cursor: options.cursor }),
      };
    },
  };
}
