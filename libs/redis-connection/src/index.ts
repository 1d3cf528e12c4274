import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { EnvReader } from '@kublambda/config';

// Every platform service reaches Redis through one address, REDIS_URL, and this is where its
// form decides the engine: redis:// (or rediss://) for a single Redis, redis+cluster:// (or
// rediss+cluster://) with a comma-separated list of seed nodes for a Redis Cluster. The rest of
// the platform sees one connection type and keeps every multi-key operation inside one hash
// slot, so the same code runs on both.

/** A single Redis or a Redis Cluster: the commands the platform uses are the same on both. */
export type RedisConnection = Redis | Cluster;

export type RedisAddress =
  | { engine: 'single'; url: string }
  | { engine: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

const CLUSTER_SCHEMES: Record<string, boolean> = { 'redis+cluster:': false, 'rediss+cluster:': true };
const SINGLE_SCHEMES = new Set(['redis:', 'rediss:']);
const EXAMPLES = 'for example redis://user:password@redis:6379 or redis+cluster://user:password@redis-0:6379,redis-1:6379,redis-2:6379';

/** Reads a REDIS_URL; throws an error that says what is wrong with it, never showing the password. */
export function parseRedisUrl(url: string): RedisAddress {
  const trimmed = url.trim();
  const scheme = /^[a-z+]+:/i.exec(trimmed)?.[0].toLowerCase();
  if (scheme && SINGLE_SCHEMES.has(scheme)) {
    checkSingleUrl(trimmed);
    return { engine: 'single', url: trimmed };
  }
  if (!scheme || !(scheme in CLUSTER_SCHEMES)) {
    throw new Error(`the Redis URL ${redactRedisUrl(trimmed)} must start with redis://, rediss://, redis+cluster:// or rediss+cluster://, ${EXAMPLES}`);
  }
  const rest = trimmed.slice(scheme.length);
  if (!rest.startsWith('//')) throw new Error(`the Redis URL ${redactRedisUrl(trimmed)} must have // after ${scheme}, ${EXAMPLES}`);
  const authority = rest.slice(2).replace(/\/.*$/, '');
  const at = authority.lastIndexOf('@');
  const credentials = at >= 0 ? authority.slice(0, at) : '';
  const hosts = at >= 0 ? authority.slice(at + 1) : authority;
  const nodes = hosts.split(',').map((node) => parseNode(node, trimmed));
  const colon = credentials.indexOf(':');
  const username = decode(colon >= 0 ? credentials.slice(0, colon) : credentials, trimmed);
  const password = colon >= 0 ? decode(credentials.slice(colon + 1), trimmed) : undefined;
  return {
    engine: 'cluster',
    nodes,
    ...(username ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    tls: CLUSTER_SCHEMES[scheme]!,
  };
}

function checkSingleUrl(url: string): void {
  if (url.replace(/^[a-z]+:\/\//i, '').replace(/[/?].*$/, '').includes(',')) {
    throw new Error(`the Redis URL ${redactRedisUrl(url)} lists several hosts: a Redis Cluster's seed nodes go in a redis+cluster:// URL`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`the Redis URL ${redactRedisUrl(url)} is not a valid URL, ${EXAMPLES}`);
  }
  if (!parsed.hostname) throw new Error(`the Redis URL ${redactRedisUrl(url)} names no host, ${EXAMPLES}`);
}

function parseNode(node: string, url: string): { host: string; port: number } {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]/\s]+)(?::(\d+))?$/i.exec(node);
  const port = Number(match?.[2] ?? 6379);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`the Redis URL ${redactRedisUrl(url)} has the seed node "${node}", which is not host or host:port (port 1 to 65535)`);
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function decode(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error(`the Redis URL ${redactRedisUrl(url)} has credentials that are not URL-encoded`);
  }
}

/** The same Redis (single or cluster) with the given user's credentials in place of any there. */
export function withRedisCredentials(url: string, username: string, password: string): string {
  parseRedisUrl(url);
  const [, scheme, rest] = /^([a-z+]+:\/\/)(.*)$/is.exec(url.trim())!;
  const authority = rest!.replace(/\/.*$/, '');
  const afterCredentials = rest!.slice(authority.lastIndexOf('@') + 1);
  return `${scheme}${encodeURIComponent(username)}:${encodeURIComponent(password)}@${afterCredentials}`;
}

/** Whether the URL carries a user or a password. */
export function hasRedisCredentials(url: string): boolean {
  const rest = url.trim().replace(/^[a-z+]+:\/\//i, '');
  return rest.replace(/\/.*$/, '').includes('@');
}

/** The URL with its password replaced by ***, for logs and errors. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@]*@/i, '$1***@');
}

/**
 * A connection to the Redis at `url`. `options` are the connection settings for a single Redis
 * and, on a cluster, for each node's connection; the ones that concern the client as a whole
 * (offline queue, lazy connect, ready check) apply to the cluster client too.
 */
export function connectRedis(url: string, options: RedisOptions = {}): RedisConnection {
  const address = parseRedisUrl(url);
  if (address.engine === 'single') return new Redis(address.url, options);
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      ...options,
      ...(address.username ? { username: address.username } : {}),
      ...(address.password !== undefined ? { password: address.password } : {}),
      ...(address.tls ? { tls: {} } : {}),
    },
    ...(options.lazyConnect !== undefined ? { lazyConnect: options.lazyConnect } : {}),
    ...(options.enableOfflineQueue !== undefined ? { enableOfflineQueue: options.enableOfflineQueue } : {}),
    ...(options.enableReadyCheck !== undefined ? { enableReadyCheck: options.enableReadyCheck } : {}),
    // After a master fails, its replica takes over within the cluster's node timeout; commands
    // sent meanwhile wait for the new slot map rather than fail at once.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    // Follow failovers: the slot map is read again every few seconds, not only on MOVED.
    slotsRefreshInterval: 2000,
  };
  return new Cluster(address.nodes, clusterOptions);
}

/** Whether the connection is a Redis Cluster's. */
export function isCluster(connection: RedisConnection): connection is Cluster {
  return connection instanceof Cluster;
}

/**
 * The connections to every node the client knows, masters and replicas: what must be told
 * things Redis keeps per node, such as ACL users (a cluster does not share them).
 */
export function everyNode(connection: RedisConnection): Redis[] {
  return isCluster(connection) ? connection.nodes('all') : [connection];
}

/** The connections to every master the client knows: between them, they hold every key. */
export function everyMaster(connection: RedisConnection): Redis[] {
  return isCluster(connection) ? connection.nodes('master') : [connection];
}

/** How many replicas must hold a write before it counts as done, and how long to wait for them. */
export interface WriteConfirmation {
  replicas: number;
  timeoutMs: number;
}

/**
 * Waits until `replicas` replicas hold every write this connection sent to the node that serves
 * `key` (Redis' WAIT, which must run on the connection that wrote), at most `timeoutMs`; throws
 * when fewer confirmed in time. A write confirmed so survives its master's failover: the
 * replica promoted in its place has it.
 */
export async function confirmReplicated(connection: RedisConnection, key: string, replicas: number, timeoutMs: number): Promise<void> {
  if (replicas <= 0) return;
  const node = isCluster(connection) ? nodeServing(connection, key) : connection;
  const confirmed = await node.wait(replicas, timeoutMs);
  if (confirmed < replicas) {
    throw new Error(`only ${confirmed} of the ${replicas} replicas asked for confirmed the write of ${key} within ${timeoutMs} ms (REDIS_WRITE_REPLICAS)`);
  }
}

function nodeServing(cluster: Cluster, key: string): Redis {
  const nodeKey = cluster.slots[calculateSlot(key)]?.[0];
  const node = everyMaster(cluster).find(({ options }) => `${options.host}:${options.port}` === nodeKey);
  if (!node) throw new Error(`no master of the Redis Cluster is known to serve ${key}`);
  return node;
}

export interface RedisSettings {
  /** REDIS_URL: a single Redis or a Redis Cluster's seed nodes, with the service's user. */
  redisUrl: string;
  /** REDIS_WRITE_REPLICAS: writes that must survive a failover count as done once this many replicas hold them. */
  redisWriteConfirmation?: WriteConfirmation;
}

/** How long a write waits for its replicas; below the state store's 2 s command timeout. */
const WRITE_CONFIRMATION_TIMEOUT_MS = 1000;

/** REDIS_URL, required, checked as parseRedisUrl reads it. */
export function readRedisUrl(read: EnvReader): string {
  const url = read.string('REDIS_URL');
  if (url) {
    read.nested(() => {
      try {
        parseRedisUrl(url);
      } catch (error) {
        throw new Error(`REDIS_URL: ${(error as Error).message}`);
      }
    });
  }
  return url;
}

/** REDIS_URL and REDIS_WRITE_REPLICAS, as the services that write what must survive a failover read them. */
export function readRedisSettings(read: EnvReader): RedisSettings {
  const redisUrl = readRedisUrl(read);
  const replicas = read.integer('REDIS_WRITE_REPLICAS', 0, { min: 0, max: 16 });
  return { redisUrl, ...(replicas > 0 ? { redisWriteConfirmation: { replicas, timeoutMs: WRITE_CONFIRMATION_TIMEOUT_MS } } : {}) };
}
