import { watcherKeys, watcherRedisUser, type LambdaName } from '@kublambda/watch-triggers';
import { CONNECTION_COMMANDS } from './acl-rules.ts';

// Each lambda's event-watcher gets a Redis user of its own, made by api-controller: its
// password sits in a Secret in the lambda's namespace, where anyone who may read that
// namespace's Secrets can take it, so it opens only that lambda's watcher keys.

/** What the watcher calls: its checkpoint and lease scripts (and the commands in them), dead letters. */
export const WATCHER_COMMANDS = [
  ...CONNECTION_COMMANDS, 'eval', 'evalsha', 'get', 'set', 'del', 'pexpire', 'pttl',
  'hget', 'hset', 'hdel', 'hgetall', 'hlen', 'hscan', 'lpush', 'ltrim', 'lrange', 'llen', 'sadd', 'smembers',
];

/** The arguments of `ACL SETUSER` that make (or reset) the watcher user of one lambda. */
export function watcherAclSetUserArgs(lambda: LambdaName, password: string): string[] {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error('a watcher Redis password must be printable ASCII without spaces');
  return [
    watcherRedisUser(lambda), 'reset', 'on', `>${password}`,
    `~${watcherKeys(lambda).pattern}`, 'resetchannels', '-@all',
    ...WATCHER_COMMANDS.map((command) => `+${command}`),
  ];
}
