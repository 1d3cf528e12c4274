// State tables: named, durable key-value tables of a namespace, in Redis. The runner performs
// operations for lambdas with executeStateOperation; api-controller removes tables with
// deleteTables. Key layout, versions, TTL and limits: docs/state-tables.md.
export { createStateStore, deleteTables, type StateStore, type TableStore, type StateRedis } from './state-store.ts';
export {
  executeStateOperation, describeStateOperation,
  type StateOperation, type StateResults, type StateResult, type StateFailure, type StateOutcome,
} from './state-operation.ts';
export { STATE_LIMITS, encodeCursor } from './limits.ts';
export { tableKeys, STATE_KEY_PREFIX, type TableKeys } from './table-keys.ts';
export { stateRedisOptions, connectStateRedis } from './state-redis.ts';
export { StateError, type StateErrorCode } from '@kublambda/lambda-api';
