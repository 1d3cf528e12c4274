import { describe, expect, it } from '@jest/globals';
import { EnvReader } from '@kublambda/config';
import { hasRedisCredentials, parseRedisUrl, readRedisSettings, redactRedisUrl, withRedisCredentials } from './index.ts';

describe('parseRedisUrl', () => {
  it('reads a single Redis URL as ioredis takes it', () => {
    expect(parseRedisUrl(' redis://runner:pw@redis:6379 ')).toEqual({ engine: 'single', url: 'redis://runner:pw@redis:6379' });
    expect(parseRedisUrl('rediss://redis.example.com')).toEqual({ engine: 'single', url: 'rediss://redis.example.com' });
  });

  it("reads a cluster URL's seed nodes, credentials and TLS", () => {
    expect(parseRedisUrl('redis+cluster://runner:p%40ss@redis-0:7000,redis-1,[::1]:7002')).toEqual({
      engine: 'cluster',
      nodes: [{ host: 'redis-0', port: 7000 }, { host: 'redis-1', port: 6379 }, { host: '::1', port: 7002 }],
      username: 'runner',
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://redis-0:7000/')).toEqual({ engine: 'cluster', nodes: [{ host: 'redis-0', port: 7000 }], tls: true });
  });

  it.each([
    ['http://redis:6379', 'the Redis URL http://redis:6379 must start with redis://, rediss://, redis+cluster:// or rediss+cluster://'],
    ['redis-0:6379', 'must start with redis://'],
    ['redis://a:secret@', 'the Redis URL redis://a:***@ is not a valid URL'],
    ['redis://a:secret@h1:1,h2:2', 'lists several hosts: a Redis Cluster\'s seed nodes go in a redis+cluster:// URL'],
    ['redis+cluster:h1:1', 'must have // after redis+cluster:'],
    ['redis+cluster://a:secret@', 'has the seed node "", which is not host or host:port'],
    ['redis+cluster://a:secret@h1:1,,h2:2', 'has the seed node "", which is not host or host:port'],
    ['redis+cluster://a:secret@h1:0', 'has the seed node "h1:0", which is not host or host:port (port 1 to 65535)'],
    ['redis+cluster://a:secret@h1:x', 'has the seed node "h1:x"'],
    ['redis+cluster://a:%E0%A4%A@h1:1', 'has credentials that are not URL-encoded'],
  ])('refuses %s', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
    try {
      parseRedisUrl(url);
    } catch (error) {
      expect((error as Error).message).not.toContain('secret');
    }
  });
});

describe('credentials in a Redis URL', () => {
  it('puts a user in place of another, for either engine', () => {
    expect(withRedisCredentials('redis://redis:6379', 'w/a', 'p@ss')).toBe('redis://w%2Fa:p%40ss@redis:6379');
    expect(withRedisCredentials('redis+cluster://old:pw@r0:1,r1:2', 'watcher', 'x')).toBe('redis+cluster://watcher:x@r0:1,r1:2');
  });

  it('tells whether a URL carries credentials, and hides the password', () => {
    expect(hasRedisCredentials('redis+cluster://r0:1,r1:2')).toBe(false);
    expect(hasRedisCredentials('redis://u@r0:1')).toBe(true);
    expect(redactRedisUrl('redis+cluster://u:secret@r0:1,r1:2')).toBe('redis+cluster://u:***@r0:1,r1:2');
  });
});

describe('readRedisSettings', () => {
  it('asks no replica to confirm writes unless REDIS_WRITE_REPLICAS says so', () => {
    expect(readRedisSettings(new EnvReader({ REDIS_URL: 'redis://r:1' }))).toEqual({ redisUrl: 'redis://r:1' });
    expect(readRedisSettings(new EnvReader({ REDIS_URL: 'redis://r:1', REDIS_WRITE_REPLICAS: '1' }))).toEqual({
      redisUrl: 'redis://r:1',
      redisWriteConfirmation: { replicas: 1, timeoutMs: 1000 },
    });
  });

  it('names every problem', () => {
    const read = new EnvReader({ REDIS_WRITE_REPLICAS: '-1' });
    readRedisSettings(read);
    expect(() => read.finish('runner')).toThrow('runner: invalid configuration:\n  - REDIS_URL is required\n  - REDIS_WRITE_REPLICAS must be a whole number from 0 to 16, not "-1"');
  });
});
