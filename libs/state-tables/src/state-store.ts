import { StateError, type JsonValue, type ListOptions, type ListPage, type PutOptions, type StateEntry, type StateTable } from '@kublambda/lambda-api';
import { confirmReplicated, type RedisConnection, type WriteConfirmation } from '@kublambda/redis-connection';
import {
  checkIfVersion, checkIncrement, checkKey, checkListLimit, checkPrefix, checkTtl, decodeCursor, encodeCursor, parseValue, serializeValue,
} from './limits.ts';
import { stateFailure } from './redis-errors.ts';
import { DELETE_SCRIPT, DELETE_TABLE_BATCH_SCRIPT, GET_SCRIPT, INCREMENT_SCRIPT, LIST_SCRIPT, PUT_SCRIPT } from './scripts.ts';
import { isNamespaceName, isTableName, tableKeys, type TableKeys } from './table-keys.ts';

export type StateRedis = RedisConnection;

/**
 * One table of one namespace, as the runner uses it on a lambda's behalf: the interface the
 * lambda sees. Every failure is a StateError, except defects.
 */
export type TableStore = StateTable;

export interface StateStore {
  table(namespace: string, table: string): TableStore;
}

// Index members the list script may look at per call beyond the page itself: bounds the time a
// list spends skipping expired keys; the cursor carries on from there.
const LIST_SKIP_BUDGET = 1000;
const DELETE_TABLE_BATCH = 500;

type ScriptReply = Array<string | number | ScriptReply>;

interface StateCommands {
  kublambdaStateGet(entry: string): Promise<ScriptReply>;
  kublambdaStatePut(entry: string, index: string, expiries: string, version: string, key: string, json: string, ttlMs: string, ifVersion: string): Promise<ScriptReply>;
  kublambdaStateDelete(entry: string, index: string, expiries: string, key: string, ifVersion: string): Promise<ScriptReply>;
  kublambdaStateIncrement(entry: string, index: string, expiries: string, version: string, key: string, by: string, ttlMs: string): Promise<ScriptReply>;
  kublambdaStateList(index: string, expiries: string, entryPrefix: string, start: string, prefix: string, limit: string, budget: string): Promise<ScriptReply>;
  kublambdaStateDeleteTableBatch(index: string, expiries: string, version: string, entryPrefix: string, batch: string): Promise<number>;
}

/** Registers the scripts on the connection (ioredis loads them by hash, and again after a restart). */
function withStateCommands(redis: StateRedis): StateRedis & StateCommands {
  if (!('kublambdaStateGet' in redis)) {
    redis.defineCommand('kublambdaStateGet', { numberOfKeys: 1, lua: GET_SCRIPT });
    redis.defineCommand('kublambdaStatePut', { numberOfKeys: 4, lua: PUT_SCRIPT });
    redis.defineCommand('kublambdaStateDelete', { numberOfKeys: 3, lua: DELETE_SCRIPT });
    redis.defineCommand('kublambdaStateIncrement', { numberOfKeys: 4, lua: INCREMENT_SCRIPT });
    redis.defineCommand('kublambdaStateList', { numberOfKeys: 2, lua: LIST_SCRIPT });
    redis.defineCommand('kublambdaStateDeleteTableBatch', { numberOfKeys: 3, lua: DELETE_TABLE_BATCH_SCRIPT });
  }
  return redis as StateRedis & StateCommands;
}

/**
 * The state tables in Redis. Use a connection made with stateRedisOptions() so that operations
 * fail fast with StateUnavailable while Redis is away.
 */
export function createStateStore(redis: StateRedis, options: { writeConfirmation?: WriteConfirmation } = {}): StateStore {
  const commands = withStateCommands(redis);
  const { writeConfirmation } = options;
  // With REDIS_WRITE_REPLICAS, a write is reported done only once replicas hold it, so it
  // survives its master's failover.
  const confirm = writeConfirmation && ((key: string) => confirmReplicated(redis, key, writeConfirmation.replicas, writeConfirmation.timeoutMs));
  return { table: (namespace, table) => tableOf(commands, namespace, table, confirm) };
}

export interface ReadOnlyStateStore {
  table(namespace: string, table: string): Pick<TableStore, 'get' | 'list'>;
}

/**
 * The state tables for a reader whose Redis user may only read them (the CLI's): the scripts run
 * as EVAL_RO, and listing skips the index members of expired entries rather than removing them.
 */
export function createReadOnlyStateStore(redis: StateRedis): ReadOnlyStateStore {
  const commands = readOnlyStateCommands(redis);
  return {
    table: (namespace, table) => {
      const { get, list } = tableOf(commands, namespace, table);
      return { get, list };
    },
  };
}

/** Waits until a write to the slot of `key` is safe from a failover. */
type ConfirmWrite = (key: string) => Promise<void>;

function tableOf(commands: StateCommands, namespace: string, table: string, confirm?: ConfirmWrite): TableStore {
  checkTableName(namespace, table);
  return tableStore(commands, `table "${table}" of namespace "${namespace}"`, tableKeys(namespace, table), confirm);
}

/** The reading scripts as EVAL_RO (sent whole: a reader runs a few, not thousands); no writing ones. */
function readOnlyStateCommands(redis: StateRedis): StateCommands {
  const refused = () => Promise.reject(new Error('a read-only state store was asked to write (a defect)'));
  return {
    kublambdaStateGet: (entry) => redis.eval_ro(GET_SCRIPT, 1, entry) as Promise<ScriptReply>,
    kublambdaStateList: (...args) => redis.eval_ro(LIST_SCRIPT, 2, ...args, 'read-only') as Promise<ScriptReply>,
    kublambdaStatePut: refused,
    kublambdaStateDelete: refused,
    kublambdaStateIncrement: refused,
    kublambdaStateDeleteTableBatch: refused,
  };
}

function tableStore(redis: StateCommands, tableName: string, keys: TableKeys, confirm?: ConfirmWrite): TableStore {
  // Validation errors are thrown before Redis is asked; Redis failures carry the operation.
  const run = async <T>(what: string, command: () => Promise<T>): Promise<T> => {
    try {
      return await command();
    } catch (error) {
      throw stateFailure(`${what} in ${tableName}`, error);
    }
  };
  // Every key of a table shares its slot (table-keys.ts), so the index stands for all of them.
  const write = async <T>(what: string, command: () => Promise<T>): Promise<T> => {
    const reply = await run(what, command);
    if (confirm) await run(what, () => confirm(keys.index));
    return reply;
  };
  const conflict = (what: string, expected: number, current: unknown) =>
    new StateError('StateConflict', `${what} in ${tableName}: expected version ${expected}${expected === 0 ? ' (no entry)' : ''}, but it is at ${current === 0 ? 'no entry' : `version ${current}`}`);

  return {
    get: async (key) => {
      checkKey(key);
      const reply = await run(`get "${key}"`, () => redis.kublambdaStateGet(keys.entryPrefix + key));
      if (reply.length === 0) return null;
      const [json, version, expiresAt] = reply as [string, number, number];
      return entry(key, json, version, expiresAt);
    },

    put: async (key, value, options = {}) => {
      checkKey(key);
      const json = serializeValue(key, value);
      const ttlMs = checkTtl(options.ttlSeconds);
      const ifVersion = checkIfVersion(options.ifVersion);
      const what = `put "${key}"`;
      const reply = await write(what, () =>
        redis.kublambdaStatePut(keys.entryPrefix + key, keys.index, keys.expiries, keys.version, key, json, optional(ttlMs), optional(ifVersion)),
      );
      if (reply[0] === 'conflict') throw conflict(what, ifVersion!, reply[1]);
      return { version: reply[1] as number };
    },

    delete: async (key, options = {}) => {
      checkKey(key);
      const ifVersion = checkIfVersion(options.ifVersion);
      const what = `delete "${key}"`;
      const reply = await write(what, () => redis.kublambdaStateDelete(keys.entryPrefix + key, keys.index, keys.expiries, key, optional(ifVersion)));
      if (reply[0] === 'conflict') throw conflict(what, ifVersion!, reply[1]);
      return reply[1] === 1;
    },

    increment: async (key, by, options = {}) => {
      checkKey(key);
      const amount = checkIncrement(by);
      const ttlMs = checkTtl(options.ttlSeconds);
      const what = `increment "${key}"`;
      const reply = await write(what, () =>
        redis.kublambdaStateIncrement(keys.entryPrefix + key, keys.index, keys.expiries, keys.version, key, String(amount), optional(ttlMs)),
      );
      if (reply[0] === 'not-a-number') throw new StateError('NotANumber', `${what} in ${tableName}: its value is not a number: ${reply[1]}`);
      if (reply[0] === 'not-finite') throw new StateError('NotANumber', `${what} by ${amount} in ${tableName}: the result would not be a finite number`);
      return Number(reply[1]);
    },

    list: async (options = {}) => {
      const limit = checkListLimit(options.limit);
      const prefix = checkPrefix(options.prefix);
      const after = decodeCursor(options.cursor);
      const reply = await run('list', () =>
        redis.kublambdaStateList(keys.index, keys.expiries, keys.entryPrefix, rangeStart(prefix, after), prefix, String(limit), String(limit + LIST_SKIP_BUDGET)),
      );
      const [more, last, rows] = reply as [number, string, Array<[string, string, number, number]>];
      const entries = rows.map(([key, json, version, expiresAt]) => entry(key, json, version, expiresAt));
      return more === 1 ? { entries, cursor: encodeCursor(last) } : { entries };
    },
  };
}

/**
 * Removes the tables of a namespace with every entry, in batches (so Redis is never blocked for
 * long). For `stateRetention: Delete`: the caller decides which tables no remaining lambda declares.
 */
export async function deleteTables(redis: StateRedis, namespace: string, tables: readonly string[]): Promise<void> {
  const commands = withStateCommands(redis);
  for (const table of tables) {
    checkTableName(namespace, table);
    const keys = tableKeys(namespace, table);
    try {
      while ((await commands.kublambdaStateDeleteTableBatch(keys.index, keys.expiries, keys.version, keys.entryPrefix, String(DELETE_TABLE_BATCH))) >= DELETE_TABLE_BATCH);
    } catch (error) {
      throw stateFailure(`deleting state table "${table}" of namespace "${namespace}"`, error);
    }
  }
}

function checkTableName(namespace: string, table: string): void {
  if (!isNamespaceName(namespace)) throw new StateError('InvalidArgument', `"${namespace}" is not a namespace name`);
  if (!isTableName(table)) throw new StateError('InvalidArgument', `"${table}" is not a state table name: lowercase letters, digits, "-" and "_", at most 63`);
}

/** ZRANGEBYLEX start: after the cursor's key, unless the cursor lies before the prefix's range. */
function rangeStart(prefix: string, after: string | undefined): string {
  if (after !== undefined && Buffer.compare(Buffer.from(after), Buffer.from(prefix)) >= 0) return `(${after}`;
  return prefix ? `[${prefix}` : '-';
}

function entry(key: string, json: string, version: number, expiresAt: number): StateEntry {
  const value = parseValue(json);
  return expiresAt >= 0 ? { key, value, version, expiresAt } : { key, value, version };
}

function optional(value: number | undefined): string {
  return value === undefined ? '' : String(value);
}

