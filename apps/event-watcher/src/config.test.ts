import { describe, expect, it } from '@jest/globals';
import { parseEventWatcherConfig } from './config.ts';

const watcherConfig = (condition?: string) =>
  JSON.stringify({
    lambda: { namespace: 'ns', name: 'hello' },
    target: { host: '', path: '/hello' },
    triggers: [{ id: 'abc', index: 0, apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'ns', events: ['ADDED'], ...(condition ? { condition } : {}) }],
  });
const env = (extra: Record<string, string> = {}) => ({ WATCHER_CONFIG: watcherConfig(), REDIS_URL: 'redis://u:p@127.0.0.1:1', RUNNER_URL: 'http://127.0.0.1:2/', ...extra });

describe('parseEventWatcherConfig', () => {
  it('reads the defaults', () => {
    const config = parseEventWatcherConfig(env());
    expect(config.runnerUrl).toBe('http://127.0.0.1:2');
    expect(config.delivery).toEqual({ concurrency: 32, attempts: 10, retryInitialMs: 500, retryMaxMs: 60_000, timeoutMs: 60_000 });
    expect([config.leaseDurationMs, config.leaseRenewMs, config.port, config.host]).toEqual([15_000, 5_000, 8080, '0.0.0.0']);
    expect(config.conditions).toEqual([undefined]);
  });

  it('compiles conditions at start', () => {
    const config = parseEventWatcherConfig(env({ WATCHER_CONFIG: watcherConfig('object.data.enabled == "true"') }));
    expect(typeof config.conditions[0]).toBe('function');
  });

  it('refuses an invalid condition, naming the trigger', () => {
    expect(() => parseEventWatcherConfig(env({ WATCHER_CONFIG: watcherConfig('nope.x == 1') }))).toThrow(/triggers\[0\]\.condition: .*undeclared reference to 'nope'/);
  });

  it('lists every problem at once', () => {
    expect(() => parseEventWatcherConfig({ WATCHER_CONFIG: '{', DELIVERY_ATTEMPTS: '0', LEASE_RENEW_MS: '9000' })).toThrow(
      /WATCHER_CONFIG is not JSON[\s\S]*RUNNER_URL is required[\s\S]*REDIS_URL is required[\s\S]*DELIVERY_ATTEMPTS must be[\s\S]*LEASE_RENEW_MS \(9000\) must be at most half/,
    );
  });

  it('refuses a lambda without a name', () => {
    const raw = JSON.parse(watcherConfig()) as { lambda: unknown };
    raw.lambda = { namespace: 'ns' };
    expect(() => parseEventWatcherConfig(env({ WATCHER_CONFIG: JSON.stringify(raw) }))).toThrow(/lambda must be/);
  });
});
