import type { Logger } from '@kublambda/logging';
import { describeError } from '@kublambda/reconcile-runtime';
import { connectRedis } from '@kublambda/redis-connection';
import { followRouteChanges, loadRouteTable, readRoute, readRoutesVersion, type RouteChange, type RouteRecord } from '@kublambda/route-table';
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

/** How often the route table's version is compared with the announcements heard. */
const VERSION_CHECK_MS = 1000;

/**
 * Keeps the matcher equal to the route records in Redis: a full load at start and after every
 * reconnect, and each announced change in between. Announcements sent while the subscription
 * was away are lost (on a Redis Cluster it moves to another node silently when its node fails),
 * so every announcement carries the table's version: one that skips a version, or a version in
 * Redis ahead of the last one heard, means a change was missed, and everything is loaded again.
 * All updates run one at a time, so an older read never overwrites a newer one.
 */
export function followRoutes(redisUrl: string, matcher: RouteMatcher, logger: Logger, listeners: RouteListeners = {}): RouteFollower {
  const { onPublished = () => {}, onRemoved = () => {} } = listeners;
  const reader = connectRedis(redisUrl, { maxRetriesPerRequest: 1 });
  const subscriber = connectRedis(redisUrl);
  for (const connection of [reader, subscriber]) {
    connection.on('error', (error: unknown) => logger.warn('route table connection error', { error: describeError(error) }));
  }
  /** The version the matcher is at: of the last full load, or of the last announcement applied after it. */
  let version = 0;
  let updates = Promise.resolve();
  const serially = (what: string, update: () => Promise<void>) => {
    updates = updates.then(update).catch((error: unknown) => {
      logger.warn(`route table ${what} failed`, { error: describeError(error) });
    });
    return updates;
  };
  const loadAll = async (why: string) => {
    const before = matcher.keys();
    const table = await loadRouteTable(reader);
    matcher.replaceAll(table.routes);
    version = table.version;
    for (const key of before) if (!matcher.get(key)) onRemoved(key);
    logger.info('loaded routes', { routes: matcher.size, version, why });
  };
  const reloadAll = (why: string) => serially('reload', () => loadAll(why));
  const apply = (change: RouteChange) =>
    serially('update', async () => {
      if (change.version > version + 1) {
        await loadAll(`announcement ${change.version} after ${version}`);
        return;
      }
      // Applied even when the last full load had it already: reading the record again is harmless.
      const route = await readRoute(reader, change.key);
      version = Math.max(version, change.version);
      if (route) {
        matcher.put(route);
        onPublished(route);
      } else if (matcher.get(change.key)) {
        matcher.delete(change.key);
        onRemoved(change.key);
      }
    });
  let checking = false;
  const checkVersion = async () => {
    if (checking) return;
    checking = true;
    try {
      const before = version;
      const current = await readRoutesVersion(reader);
      // Redis was at `before` or later when we got there, so a lower version means it lost
      // writes (a failover, a restart without persistence): what we hold may be gone there.
      if (current < before) {
        await reloadAll(`version ${current} behind ${before}`);
        return;
      }
      // Read before the updates queued so far ran: compare once they did.
      await updates;
      if (current > version) await reloadAll(`version ${current} ahead of ${version}`);
    } catch (error) {
      logger.warn('route table version check failed', { error: describeError(error) });
    } finally {
      checking = false;
    }
  };
  let timer: NodeJS.Timeout | undefined;

  const loaded = (async () => {
    await followRouteChanges(subscriber, apply);
    // Subscribed first, then loaded: a change in between is applied after the load.
    await reloadAll('start');
    subscriber.on('ready', () => void reloadAll('reconnected'));
    timer = setInterval(() => void checkVersion(), VERSION_CHECK_MS);
    timer.unref();
  })();

  return {
    loaded,
    stop: () => {
      clearInterval(timer);
      subscriber.disconnect();
      reader.disconnect();
    },
  };
}
