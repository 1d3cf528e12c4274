// What the admin API (admin-api.ts) reads and changes in Redis: watchers' dead-letter lists,
// route records (where a retried event goes) and state tables, read-only.
import type { RedisConnection } from '@kublambda/redis-connection';
import { resourceEventKindOf } from '@kublambda/lambda-api';
import { readRoute } from '@kublambda/route-table';
import { createReadOnlyStateStore } from '@kublambda/state-tables';
import { createEventPoster, resourceEventRequest, watcherKeys, type DeadLetter } from '@kublambda/watch-triggers';
import type { AdminApiDeps, StoredDeadLetter } from './admin-api.ts';

/** How long one redelivery may take before it counts as failed. */
const REDELIVERY_TIMEOUT_MS = 30_000;

/** The list's entries that parse, with their stored text; others are skipped (never written by this version). */
export function parseDeadLetters(raws: string[]): StoredDeadLetter[] {
  return raws.flatMap((raw) => {
    try {
      const entry = JSON.parse(raw) as DeadLetter;
      return typeof entry?.id === 'string' ? [{ entry, raw }] : [];
    } catch {
      return [];
    }
  });
}

export function redisAdminData(redis: RedisConnection, stateRedis: RedisConnection, runnerUrl: string): AdminApiDeps {
  const state = createReadOnlyStateStore(stateRedis);
  return {
    deadLetters: async (lambda) => parseDeadLetters(await redis.lrange(watcherKeys(lambda).deadLetters, 0, -1)),
    removeDeadLetter: async (lambda, raw) => (await redis.lrem(watcherKeys(lambda).deadLetters, 1, raw)) > 0,
    redeliver: async (lambda, entry) => {
      const route = await readRoute(redis, `${lambda.namespace}/${lambda.name}`);
      if (!route) return undefined;
      const poster = createEventPoster({ url: runnerUrl + route.pathPrefix, host: route.host ?? '', timeoutMs: REDELIVERY_TIMEOUT_MS, concurrency: 1 });
      try {
        const request = resourceEventRequest({
          // A type this version does not know is sent as a modification.
          type: resourceEventKindOf(entry.type) ?? 'MODIFIED',
          object: entry.object as Parameters<typeof resourceEventRequest>[0]['object'],
          source: entry.source ?? 'kublambda/dead-letters',
          time: new Date(entry.time ?? entry.deadAt),
          triggerIndex: entry.triggerIndex,
          id: entry.id,
        });
        return await poster.post(request, new AbortController().signal);
      } finally {
        poster.close();
      }
    },
    listTable: (namespace, table, options) => state.table(namespace, table).list(options),
  };
}
