// State tables: named, durable key-value tables of a namespace, in Redis. The runner performs
// operations for lambdas with executeStateOperation; api-controller removes tables with
// deleteTables; the CLI reads them with createReadOnlyStateStore. Key layout, versions, TTL and
// limits: docs/state-tables.md.
export { createStateStore, createReadOnlyStateStore, deleteTables, type StateStore, type ReadOnlyStateStore, type TableStore, type StateRedis } from './state-store.ts';
export { STATE_SCRIPTS } from './scripts.ts';
export {
  executeStateOperation, describeStateOperation,
  type StateOperation, type StateResults, type StateResult, type StateFailure, type StateOutcome,
} from './state-operation.ts';
export { STATE_LIMITS, encodeCursor } from './limits.ts';
export { tableKeys, STATE_KEY_PREFIX, type TableKeys } from './table-keys.ts';
export { stateRedisOptions, connectStateRedis } from './state-redis.ts';
export { StateError, type StateErrorCode } from '@kublambda/lambda-api';
