import type { RedisOptions } from 'ioredis';
import { connectRedis, redactRedisUrl, type RedisConnection } from '@kublambda/redis-connection';

/**
 * Connection settings for the state store's own Redis connection. A lambda waiting on state
 * while Redis is away would hold its request until the runner's timeout, so nothing waits for
 * Redis: commands fail at once while disconnected (no offline queue), commands in flight when
 * the connection drops fail rather than being sent again (an increment could otherwise count
 * twice), and a command Redis does not answer fails after commandTimeoutMs. Reconnection keeps
 * trying, at most a second apart, so service resumes soon after Redis returns.
 */
export function stateRedisOptions(commandTimeoutMs = 2000): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    // How long disconnect() waits for the socket to close before destroying it; ioredis waits
    // out the whole of it when the socket is already gone (a refused connection), by default 2 s.
    disconnectTimeout: 100,
  };
}

/**
 * A connection for the state store. Resolves once connected; `onError` hears connection
 * errors (ioredis reports each reconnection attempt), which operations also report themselves.
 */
export async function connectStateRedis(url: string, onError: (error: Error) => void, commandTimeoutMs?: number): Promise<RedisConnection> {
  const redis = connectRedis(url, { ...stateRedisOptions(commandTimeoutMs), lazyConnect: true });
  // connect() fails with "Connection is closed."; the reason (say, ECONNREFUSED) comes as an event.
  let reason: Error | undefined;
  const remember = (error: Error) => (reason = error);
  redis.on('error', remember);
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`connecting to the state store at ${redactRedisUrl(url)}`, { cause: reason ?? error });
  } finally {
    redis.off('error', remember);
  }
  return redis;
}
