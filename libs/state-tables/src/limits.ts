import { StateError, type JsonValue } from '@kublambda/lambda-api';

export const STATE_LIMITS = {
  /** UTF-8 bytes of a key. */
  maxKeyBytes: 1024,
  /** UTF-8 bytes of a value's JSON text. */
  maxValueBytes: 256 * 1024,
  defaultListLimit: 100,
  maxListLimit: 1000,
  /** Ten years: longer is a mistake, not a cache. */
  maxTtlSeconds: 10 * 365 * 24 * 3600,
} as const;

export function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw new StateError('InvalidKey', `a key must be a string, not ${typeName(key)}`);
  if (key.length === 0) throw new StateError('InvalidKey', 'a key must not be empty');
  // Lone surrogates have no UTF-8 form: two different keys would be stored as the same bytes.
  if (!key.isWellFormed()) throw new StateError('InvalidKey', 'a key must be valid Unicode (it contains a lone surrogate)');
  const bytes = Buffer.byteLength(key);
  if (bytes > STATE_LIMITS.maxKeyBytes) {
    throw new StateError('InvalidKey', `key is ${bytes} bytes; the limit is ${STATE_LIMITS.maxKeyBytes} bytes (UTF-8)`);
  }
  return key;
}

/** The value's JSON text, as stored. */
export function serializeValue(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new StateError('InvalidArgument', `the value of "${key}" cannot be serialized as JSON: ${(error as Error).message}`);
  }
  if (json === undefined) throw new StateError('InvalidArgument', `the value of "${key}" is ${typeName(value)}, which JSON cannot represent`);
  const bytes = Buffer.byteLength(json);
  if (bytes > STATE_LIMITS.maxValueBytes) {
    throw new StateError('ValueTooLarge', `the value of "${key}" is ${bytes} bytes as JSON; the limit is ${STATE_LIMITS.maxValueBytes} bytes (256 KiB)`);
  }
  return json;
}

export function parseValue(json: string): JsonValue {
  return JSON.parse(json) as JsonValue;
}

/** Milliseconds, or undefined when no TTL was asked for. */
export function checkTtl(ttlSeconds: unknown): number | undefined {
  if (ttlSeconds === undefined) return undefined;
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > STATE_LIMITS.maxTtlSeconds) {
    throw new StateError('InvalidArgument', `ttlSeconds must be a number of seconds above 0 and at most ${STATE_LIMITS.maxTtlSeconds}, not ${describe(ttlSeconds)}`);
  }
  return Math.ceil(ttlSeconds * 1000);
}

export function checkIfVersion(ifVersion: unknown): number | undefined {
  if (ifVersion === undefined) return undefined;
  if (typeof ifVersion !== 'number' || !Number.isSafeInteger(ifVersion) || ifVersion < 0) {
    throw new StateError('InvalidArgument', `ifVersion must be a whole number of 0 or more (0: only if there is no entry), not ${describe(ifVersion)}`);
  }
  return ifVersion;
}

export function checkIncrement(by: unknown): number {
  if (by === undefined) return 1;
  if (typeof by !== 'number' || !Number.isFinite(by)) throw new StateError('InvalidArgument', `increment by must be a finite number, not ${describe(by)}`);
  return by;
}

export function checkListLimit(limit: unknown): number {
  if (limit === undefined) return STATE_LIMITS.defaultListLimit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > STATE_LIMITS.maxListLimit) {
    throw new StateError('InvalidArgument', `list limit must be a whole number from 1 to ${STATE_LIMITS.maxListLimit}, not ${describe(limit)}`);
  }
  return limit;
}

export function checkPrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string' || !prefix.isWellFormed() || Buffer.byteLength(prefix) > STATE_LIMITS.maxKeyBytes) {
    throw new StateError('InvalidArgument', `a list prefix must be a string of valid Unicode of at most ${STATE_LIMITS.maxKeyBytes} bytes`);
  }
  return prefix;
}

// A cursor is the last key of the previous page, base64url-encoded so that nobody mistakes it
// for a key, and so that it prints and travels in URLs and command lines as it is.
export function encodeCursor(lastKey: string): string {
  return Buffer.from(lastKey).toString('base64url');
}

export function decodeCursor(cursor: unknown): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const key = typeof cursor === 'string' && /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : undefined;
  if (key === undefined || key.length === 0 || encodeCursor(key) !== cursor) {
    throw new StateError('InvalidArgument', 'the list cursor is not one returned by list');
  }
  return key;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

function describe(value: unknown): string {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : typeof value === 'string' ? JSON.stringify(value) : typeName(value);
}
