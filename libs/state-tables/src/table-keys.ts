// Where one table lives in Redis. Every key of a table carries the hash tag
// {<namespace>/<table>}, so the whole table sits in one Redis Cluster slot and each Lua script
// touches a single slot. Namespaces ([a-z0-9-]) and table names ([a-z0-9_-], checked by the CRD
// and again here) contain neither braces nor slashes, so tags cannot collide.

export const STATE_KEY_PREFIX = 'kublambda:state:';

export interface TableKeys {
  /** Prefix of the entry keys: `<prefix><user key>` is a hash {v: JSON text, n: version}. */
  entryPrefix: string;
  /** Sorted set of the table's keys, all scored 0, for listing in key order (ZRANGEBYLEX). */
  index: string;
  /** Sorted set of keys that expire, scored by expiry time (ms), so expired keys leave the index. */
  expiries: string;
  /** Counter of writes to the table: each write's version, so versions only grow, also across delete. */
  version: string;
}

export function tableKeys(namespace: string, table: string): TableKeys {
  const base = `${STATE_KEY_PREFIX}{${namespace}/${table}}:`;
  return { entryPrefix: `${base}e:`, index: `${base}index`, expiries: `${base}expiries`, version: `${base}version` };
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const TABLE = /^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$/;

export function isNamespaceName(name: string): boolean {
  return NAMESPACE.test(name);
}

export function isTableName(name: string): boolean {
  return TABLE.test(name);
}
