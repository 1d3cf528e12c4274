import { everyNode, type RedisConnection } from '@kublambda/redis-connection';
import { watcherKeys } from '@kublambda/watch-triggers';
import type { WatcherRedis } from './ensure-watchers.ts';

/** Watcher users and keys through the controller's own Redis connection (its ACL allows both). */
export function redisWatchers(redis: RedisConnection): WatcherRedis {
  return {
    setUser: async (args) => {
      // Redis keeps users per node: on a cluster, every node must know the watcher's.
      await withContext(`making Redis user ${args[0]}`, () => Promise.all(everyNode(redis).map((node) => node.call('ACL', 'SETUSER', ...args))));
    },
    deleteUser: async (user) => {
      await withContext(`deleting Redis user ${user}`, () => Promise.all(everyNode(redis).map((node) => node.call('ACL', 'DELUSER', user))));
    },
    deleteKeys: async (lambda) => {
      const keys = watcherKeys(lambda);
      await withContext(`deleting the watcher keys of ${lambda.namespace}/${lambda.name}`, async () => {
        const ids = await redis.smembers(keys.triggerIds);
        const checkpoints = ids.flatMap((id) => [keys.objects(id), keys.resourceVersion(id)]);
        // The id set last: a failure before it leaves the set to find the checkpoints again.
        await redis.del(keys.lease, keys.deadLetters, ...checkpoints);
        await redis.del(keys.triggerIds);
      });
    },
  };
}

async function withContext<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new Error(what, { cause: error });
  }
}
