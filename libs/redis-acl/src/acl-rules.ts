import { BUILD_QUEUE, BUILD_QUEUE_PREFIX } from '@kublambda/build-queue';
import { ROUTE_CHANGES_CHANNEL, ROUTE_CLAIMS_BY_LAMBDA_KEY, ROUTE_CLAIMS_KEY, ROUTES_KEY, ROUTES_VERSION_KEY } from '@kublambda/route-table';
import { STATE_KEY_PREFIX } from '@kublambda/state-tables';
import { WATCHER_KEY_PREFIX } from '@kublambda/watch-triggers';

// Who may do what in the platform's Redis: one user per service, each with only the keys,
// channels and commands it uses; the `default` user is off, so a connection without
// credentials (a lambda reaching the Redis port, say) can do nothing. Every key family the
// platform uses appears here; acl-rules.test.ts fails when one is added without a rule.
//
// Redis checks the commands a Lua script calls against the caller's rules too, so a user that
// runs a script also needs the commands inside it.

export const SERVICE_USERS = ['runner', 'api-controller', 'builder'] as const;
export type ServiceUser = (typeof SERVICE_USERS)[number];
/** `admin` may do everything: for tests and the local all-in-one's operator, never for a lambda or a platform service. */
export type RedisUser = ServiceUser | 'admin';
export const REDIS_USERS: readonly RedisUser[] = [...SERVICE_USERS, 'admin'];

export interface AccessRule {
  /** Glob patterns of keys the user may read and write. */
  readWriteKeys: readonly string[];
  /** Glob patterns of keys the user may read only (Redis 7 `%R~`). */
  readOnlyKeys: readonly string[];
  /** Pub/sub channels the user may publish or subscribe to. */
  channels: readonly string[];
  /** Commands (lowercase; `command|subcommand` for one subcommand); everything else is refused. */
  commands: readonly string[];
}

export const STATE_KEYS = `${STATE_KEY_PREFIX}*`;
/** Every lambda's event-watcher keys (each watcher's own user sees only its lambda's). */
export const WATCHER_KEYS = `${WATCHER_KEY_PREFIX}*`;
/** BullMQ keeps every key of a queue under `<prefix>:<queue>:`. */
export const BUILD_QUEUE_KEYS = `${BUILD_QUEUE_PREFIX}:${BUILD_QUEUE}:*`;

/**
 * ioredis asks INFO when it connects (its ready check) and BullMQ reads the server's version
 * and eviction policy from it. On a Redis Cluster, ioredis reads the slot map (CLUSTER SLOTS)
 * and the cluster's state (CLUSTER INFO, its ready check there). These show server statistics
 * and node addresses, never keys or values.
 */
export const CONNECTION_COMMANDS = ['info', 'cluster|slots', 'cluster|info'];

/** What the state-table scripts (libs/state-tables/src/scripts.ts) call, beside running them. */
const STATE_SCRIPT_COMMANDS = [
  'time', 'hget', 'hmget', 'hset', 'del', 'incr', 'pexpireat', 'pexpiretime', 'persist',
  'zadd', 'zrem', 'zrange', 'zrangebylex', 'zrangebyscore',
];
/** What listing a table calls when it runs read-only (no pruning of the index). */
const STATE_LIST_READ_COMMANDS = ['hmget', 'pexpiretime', 'zrangebylex'];

/** What the route-claim scripts (libs/route-table/src/route-claims.ts) call. */
const ROUTE_CLAIM_SCRIPT_COMMANDS = ['hget', 'hset', 'hdel'];
/** What the route-change script (libs/route-table/src/index.ts) calls. */
const ROUTE_CHANGE_SCRIPT_COMMANDS = ['hset', 'hdel', 'incr', 'publish'];
/**
 * WAIT: a write counts as done once REDIS_WRITE_REPLICAS replicas hold it
 * (libs/redis-connection). It blocks the caller only, and shows nothing.
 */
const CONFIRMATION_COMMANDS = ['wait'];

/**
 * What BullMQ's queues, workers and queue events call: directly, and inside its Lua scripts
 * (node_modules/bullmq/dist/esm/commands and its includes). Left out on purpose: SCAN (obliterate; it would list
 * every key name in Redis) and CLIENT LIST (getWorkers; it shows every connection), which the
 * platform does not use.
 */
const BULLMQ_COMMANDS = [
  'client|setname', 'eval', 'evalsha', 'multi', 'exec', 'bzpopmin', 'time', 'type', 'exists', 'rename',
  'get', 'set', 'del', 'unlink', 'incr', 'incrby', 'pexpire', 'pexpireat', 'persist', 'pttl',
  'hdel', 'hexists', 'hget', 'hgetall', 'hincrby', 'hlen', 'hmget', 'hmset', 'hset',
  'lindex', 'llen', 'lpop', 'lpos', 'lpush', 'lrange', 'lrem', 'lset', 'ltrim', 'rpop', 'rpoplpush', 'rpush',
  'sadd', 'scard', 'sismember', 'smembers', 'srem',
  'xadd', 'xdel', 'xlen', 'xrange', 'xread', 'xtrim',
  'zadd', 'zcard', 'zcount', 'zlexcount', 'zpopmin', 'zrange', 'zrangebylex', 'zrangebyscore', 'zrem', 'zremrangebyrank', 'zremrangebyscore',
  'zrevrange', 'zrevrangebyscore', 'zscore',
];

export const ACL_RULES: Record<ServiceUser, AccessRule> = {
  // Serves routes and performs lambdas' state operations: reads routes (never writes them),
  // follows their announcements, runs the state scripts. No build queue, no route claims.
  runner: {
    readWriteKeys: [STATE_KEYS],
    readOnlyKeys: [ROUTES_KEY, ROUTES_VERSION_KEY],
    channels: [ROUTE_CHANGES_CHANNEL],
    commands: [...CONNECTION_COMMANDS, 'hget', 'hgetall', 'get', 'multi', 'exec', 'subscribe', 'evalsha', 'eval', ...STATE_SCRIPT_COMMANDS, ...CONFIRMATION_COMMANDS],
  },
  // Publishes routes (a transaction with the announcement), holds route claims, requests builds
  // and reads their outcome, and removes state tables of deleted lambdas (stateRetention: Delete).
  // Its admin API (for the CLI, through a port-forward) reads dead letters and state tables, and
  // removes a dead letter once it was delivered again.
  // It makes each watcher's Redis user (ACL SETUSER, watcher-users.ts) and removes the watcher's
  // keys when its triggers or its lambda go. Making users is a power over all of Redis: it is
  // the platform's controller, trusted as its Kubernetes role is.
  'api-controller': {
    readWriteKeys: [ROUTES_KEY, ROUTES_VERSION_KEY, ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY, BUILD_QUEUE_KEYS, STATE_KEYS, WATCHER_KEYS],
    readOnlyKeys: [],
    channels: [ROUTE_CHANGES_CHANNEL],
    commands: [
      ...CONNECTION_COMMANDS, 'hget', 'hgetall', 'get', 'multi', 'exec', 'acl|setuser', 'acl|deluser', 'smembers', 'lrange', 'llen', 'lrem',
      // Its admin API reads state tables as the CLI's read-only store does.
      'eval_ro', 'evalsha_ro', ...STATE_LIST_READ_COMMANDS,
      ...ROUTE_CHANGE_SCRIPT_COMMANDS, ...ROUTE_CLAIM_SCRIPT_COMMANDS, ...STATE_SCRIPT_COMMANDS, ...BULLMQ_COMMANDS, ...CONFIRMATION_COMMANDS,
    ],
  },
  // Takes build jobs and reports their outcome: the build queue and nothing else.
  builder: {
    readWriteKeys: [BUILD_QUEUE_KEYS],
    readOnlyKeys: [],
    channels: [],
    commands: [...CONNECTION_COMMANDS, ...BULLMQ_COMMANDS],
  },
};

/**
 * The default user is off: no connection can authenticate as it, so one without credentials
 * gets NOAUTH for everything. Its rules still allow everything because Redis 7.0 replays the
 * append-only file as the default user and checks its rules at every EXEC there (scripts are
 * persisted as MULTI/EXEC); with `-@all`, a restart would drop every script's writes.
 */
export const DEFAULT_USER_LINE = 'user default off resetpass ~* &* +@all';

/** The ACL file lines (`aclfile` format) for every user. */
export function aclLines(passwords: Record<RedisUser, string>): string[] {
  for (const user of REDIS_USERS) checkPassword(user, passwords[user]);
  return [
    DEFAULT_USER_LINE,
    ...SERVICE_USERS.map((user) => serviceAclLine(user, ACL_RULES[user], passwords[user])),
    `user admin on >${passwords.admin} ~* &* +@all`,
  ];
}

function serviceAclLine(user: ServiceUser, rule: AccessRule, password: string): string {
  return `user ${user} on resetpass >${password} ${serviceAclRules(rule)}`;
}

/** A service user's rules in ACL syntax, after its password: keys, channels, commands. */
export function serviceAclRules(rule: AccessRule): string {
  return [
    'resetkeys resetchannels',
    ...rule.readWriteKeys.map((pattern) => `~${pattern}`),
    ...rule.readOnlyKeys.map((pattern) => `%R~${pattern}`),
    ...rule.channels.map((channel) => `&${channel}`),
    '-@all',
    ...[...new Set(rule.commands)].map((command) => `+${command}`),
  ].join(' ');
}

/**
 * The chart's copy of the rules (charts/kublambda/files/redis-acl-rules.txt), one
 * `<user> <rules>` line per service user, which its bundled Redis's ACL file is made from with
 * the passwords the chart generates. Written by `node libs/redis-acl/src/write-chart-rules.ts`;
 * a test fails when the file and ACL_RULES differ.
 */
export function chartAclRulesFile(): string {
  return [
    '# Generated from libs/redis-acl (ACL_RULES) by `node libs/redis-acl/src/write-chart-rules.ts`; do not edit.',
    ...SERVICE_USERS.map((user) => `${user} ${serviceAclRules(ACL_RULES[user])}`),
  ].join('\n') + '\n';
}

// An ACL file is read line by line and split at spaces: a password must be one word.
function checkPassword(user: RedisUser, password: string | undefined): void {
  if (!password || !/^[\x21-\x7e]+$/.test(password)) throw new Error(`the Redis password for user "${user}" must be printable ASCII without spaces, and not empty`);
}

/** redis://user:password@host:port, for REDIS_URL. */
export function redisUrlFor(user: RedisUser, password: string, host: string, port: number): string {
  return `redis://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}`;
}
