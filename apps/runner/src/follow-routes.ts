import { Redis } from 'ioredis';
import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { followRouteChanges, loadRoutes, readRoute, type RouteRecord } from '@kublambda/route-table';
import type { RouteMatcher } from './route-matcher.ts';

export interface RouteListeners {
  /** A route was announced as new or changed (not called for the full loads). */
  onPublished?: (route: RouteRecord) => void;
  /** A route went away, however that was noticed. */
  onRemoved?: (key: string) => void;
}

export interface RouteFollower {
  /** Resolves once the first full load is in the matcher. */
  loaded: Promise<void>;
  stop(): void;
}

/**
 * Keeps the matcher equal to the route records in Redis: a full load at start and after every
 * reconnect (announcements sent while disconnected are lost), and each announced change in
 * between. All updates run one at a time, so an older read never overwrites a newer one.
 */
export function followRoutes(redisUrl: string, matcher: RouteMatcher, logger: Logger, listeners: RouteListeners = {}): RouteFollower {
  const { onPublished = () => {}, onRemoved = () => {} } = listeners;
  const reader = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const subscriber = new Redis(redisUrl);
  for (const connection of [reader, subscriber]) {
    connection.on('error', (error) => logger.warn('route table connection error', { error: describeError(error) }));
  }
  let updates = Promise.resolve();
  const serially = (what: string, update: () => Promise<void>) => {
    updates = updates.then(update).catch((error: unknown) => {
      logger.warn(`route table ${what} failed`, { error: describeError(error) });
    });
    return updates;
  };
  const reloadAll = () =>
    serially('reload', async () => {
      const before = matcher.keys();
      matcher.replaceAll(await loadRoutes(reader));
      for (const key of before) if (!matcher.get(key)) onRemoved(key);
      logger.info('loaded routes', { routes: matcher.size });
    });

  const loaded = (async () => {
    await followRouteChanges(subscriber, (change) =>
      serially('update', async () => {
        const route = await readRoute(reader, change.key);
        if (route) {
          matcher.put(route);
          onPublished(route);
        } else if (matcher.get(change.key)) {
          matcher.delete(change.key);
          onRemoved(change.key);
        }
      }),
    );
    // Subscribed first, then loaded: a change in between is applied after the load.
    await reloadAll();
    subscriber.on('ready', () => void reloadAll());
  })();

  return {
    loaded,
    stop: () => {
      subscriber.disconnect();
      reader.disconnect();
    },
  };
}
