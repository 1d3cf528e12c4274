import { describe, expect, it } from '@jest/globals';
import { checkTtl, decodeCursor, encodeCursor } from './limits.ts';
import { isTableName, tableKeys } from './table-keys.ts';

/** The part of a key Redis Cluster hashes: the text inside its first {...}, if not empty. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('table keys', () => {
  it('puts every key of a table, whatever the entry key, under the hash tag of namespace and table', () => {
    const keys = tableKeys('shop', 'orders');
    const all = [keys.index, keys.expiries, keys.version, ...['plain', '{braced}', 'a}b{c', 'ü/€'].map((key) => keys.entryPrefix + key)];
    expect(all.map(hashTag)).toEqual(all.map(() => 'shop/orders'));
  });

  it('gives tables of other namespaces, or other names, keys of their own', () => {
    expect(tableKeys('a', 'b-c').entryPrefix).not.toBe(tableKeys('a-b', 'c').entryPrefix);
    expect(tableKeys('shop', 'orders').index).toBe('kublambda:state:{shop/orders}:index');
  });

  it.each([
    ['orders', true], ['order_lines-2', true], ['a', true], ['x'.repeat(63), true],
    ['', false], ['Orders', false], ['-orders', false], ['orders_', false], ['a/b', false], ['{x}', false], ['x'.repeat(64), false],
  ])('table name %j valid: %s', (name, valid) => {
    expect(isTableName(name)).toBe(valid);
  });
});

describe('limits', () => {
  it('turns seconds into whole milliseconds, rounding up', () => {
    expect(checkTtl(undefined)).toBeUndefined();
    expect(checkTtl(1)).toBe(1000);
    expect(checkTtl(0.0001)).toBe(1);
  });

  it.each([0, -1, Number.POSITIVE_INFINITY, Number.NaN, '5', 11 * 365 * 24 * 3600])('refuses the TTL %p', (ttl) => {
    expect(() => checkTtl(ttl)).toThrow(/^ttlSeconds must be a number of seconds above 0 and at most 315360000, not /);
  });

  it('round-trips any key through a cursor, and refuses cursors it did not make', () => {
    for (const key of ['a', 'item/07', 'ü€😀', '+/=']) expect(decodeCursor(encodeCursor(key))).toBe(key);
    expect(decodeCursor(undefined)).toBeUndefined();
    for (const cursor of ['a+b', 'YQ==', 'Y', 7]) expect(() => decodeCursor(cursor)).toThrow('the list cursor is not one returned by list');
  });
});
