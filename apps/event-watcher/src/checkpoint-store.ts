import { connectRedis } from '@kublambda/redis-connection';
import { DEAD_LETTER_LIMIT, watcherKeys, type DeadLetter, type LambdaName } from '@kublambda/watch-triggers';
import type { KubeObject } from './kube-object.ts';

// The watcher's state in Redis: the lease that fences two watchers of one lambda, and the
// checkpoint (per trigger, each object as last handled, and the resourceVersion reached).
// Every checkpoint write is a script that first checks that the lease is still ours, so a
// watcher that lost its lease (paused, partitioned) cannot move the checkpoint of the one
// that took over. Only the commands of the watcher's Redis user are used (WATCHER_COMMANDS).

/** A fenced write found the lease held by another watcher (or by no one). */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

const NOT_HOLDER = 'NOTHOLDER';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;
const FENCE = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return redis.error_reply('${NOT_HOLDER} the lease is not ours') end
`;
/** KEYS: lease, objects hash, trigger ids, dead letters; ARGV: holder, trigger id, uid, object JSON or '' (delete), dead letter JSON or '', limit. */
const RECORD_HANDLED = `${FENCE}redis.call('sadd', KEYS[3], ARGV[2])
if ARGV[5] ~= '' then
  redis.call('lpush', KEYS[4], ARGV[5])
  redis.call('ltrim', KEYS[4], 0, tonumber(ARGV[6]) - 1)
end
if ARGV[4] == '' then redis.call('hdel', KEYS[2], ARGV[3]) else redis.call('hset', KEYS[2], ARGV[3], ARGV[4]) end
return 1`;
/** KEYS: lease, resourceVersion, trigger ids; ARGV: holder, resourceVersion, trigger id. */
const RECORD_RESOURCE_VERSION = `${FENCE}redis.call('sadd', KEYS[3], ARGV[3])
redis.call('set', KEYS[2], ARGV[2])
return 1`;

export interface CheckpointStore {
  /** SET NX PX: whether we now hold the lease. */
  tryAcquireLease(): Promise<boolean>;
  /** Extends our lease; false when it is no longer ours. */
  renewLease(): Promise<boolean>;
  releaseLease(): Promise<void>;
  loadObjects(triggerId: string): Promise<Map<string, KubeObject>>;
  /** The resourceVersion up to which everything was handled, if one was recorded. */
  loadResourceVersion(triggerId: string): Promise<string | undefined>;
  /** The object's event was handled: remember its state (or forget it, after a deletion), with its dead letter if it failed. */
  recordHandled(triggerId: string, uid: string, object: KubeObject | null, deadLetter?: DeadLetter): Promise<void>;
  recordResourceVersion(triggerId: string, resourceVersion: string): Promise<void>;
  close(): Promise<void>;
}

export function connectCheckpointStore(options: { url: string; lambda: LambdaName; holder: string; leaseDurationMs: number; onError: (error: Error) => void }): CheckpointStore {
  const keys = watcherKeys(options.lambda);
  // Commands wait through a reconnect rather than fail fast: the lease deadline, not Redis'
  // availability, decides when the watcher stops delivering.
  const redis = connectRedis(options.url, { maxRetriesPerRequest: null });
  redis.on('error', options.onError);
  const fenced = async (script: string, keyList: string[], args: Array<string | number>) => {
    try {
      await redis.eval(script, keyList.length, ...keyList, ...args);
    } catch (error) {
      if ((error as Error).message.startsWith(NOT_HOLDER)) throw new LeaseLostError('the lease is held by another watcher', { cause: error });
      throw error;
    }
  };
  return {
    tryAcquireLease: async () => (await redis.set(keys.lease, options.holder, 'PX', options.leaseDurationMs, 'NX')) === 'OK',
    renewLease: async () => (await redis.eval(RENEW, 1, keys.lease, options.holder, options.leaseDurationMs)) === 1,
    releaseLease: async () => void (await redis.eval(RELEASE, 1, keys.lease, options.holder)),
    loadObjects: async (triggerId) => {
      const objects = new Map<string, KubeObject>();
      // HSCAN rather than HGETALL: a trigger may watch many thousands of objects.
      let cursor = '0';
      do {
        const [next, entries] = await redis.hscan(keys.objects(triggerId), cursor, 'COUNT', 500);
        for (let i = 0; i < entries.length; i += 2) objects.set(entries[i]!, JSON.parse(entries[i + 1]!) as KubeObject);
        cursor = next;
      } while (cursor !== '0');
      return objects;
    },
    loadResourceVersion: async (triggerId) => (await redis.get(keys.resourceVersion(triggerId))) ?? undefined,
    recordHandled: (triggerId, uid, object, deadLetter) =>
      fenced(RECORD_HANDLED, [keys.lease, keys.objects(triggerId), keys.triggerIds, keys.deadLetters], [
        options.holder, triggerId, uid, object ? JSON.stringify(object) : '', deadLetter ? JSON.stringify(deadLetter) : '', DEAD_LETTER_LIMIT,
      ]),
    recordResourceVersion: (triggerId, resourceVersion) =>
      fenced(RECORD_RESOURCE_VERSION, [keys.lease, keys.resourceVersion(triggerId), keys.triggerIds], [options.holder, resourceVersion, triggerId]),
    close: async () => {
      // Not QUIT: the watcher user may call only WATCHER_COMMANDS.
      redis.disconnect();
    },
  };
}
