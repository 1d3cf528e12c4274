import os from 'node:os';
import { readRedisUrl } from '@kublambda/redis-connection';
import { EnvReader, type Env } from '@kublambda/config';
import { compileCondition, parseWatcherConfig, type ConditionInput, type ConditionVerdict, type WatcherConfig } from '@kublambda/watch-triggers';

export interface DeliverySettings {
  /** Different objects whose events are in flight at once. */
  concurrency: number;
  /** Attempts per event before it is dead-lettered. */
  attempts: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** One attempt's limit, connect to response. */
  timeoutMs: number;
}

export interface EventWatcherConfig {
  watcher: WatcherConfig;
  /** Per trigger (same order as watcher.triggers): its condition, compiled once; absent = always true. */
  conditions: Array<((input: ConditionInput) => ConditionVerdict) | undefined>;
  redisUrl: string;
  runnerUrl: string;
  identity: string;
  host: string;
  port: number;
  delivery: DeliverySettings;
  leaseDurationMs: number;
  leaseRenewMs: number;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parseEventWatcherConfig(env: Env): EventWatcherConfig {
  const read = new EnvReader(env);
  const watcher = read.nested((env) => parseWatcherConfig(env.WATCHER_CONFIG));
  const conditions = read.nested(() => (watcher ? compileTriggerConditions(watcher) : []));
  const runnerUrl = read.string('RUNNER_URL');
  if (runnerUrl) read.nested(() => checkHttpUrl('RUNNER_URL', runnerUrl));
  const config: EventWatcherConfig = {
    watcher: watcher!,
    conditions: conditions ?? [],
    redisUrl: readRedisUrl(read),
    runnerUrl: runnerUrl.replace(/\/+$/, ''),
    identity: read.string('POD_NAME', `${os.hostname()}-${process.pid}`),
    host: read.string('HOST', '0.0.0.0'),
    port: read.integer('PORT', 8080, { min: 0, max: 65_535 }),
    delivery: {
      concurrency: read.integer('DELIVERY_CONCURRENCY', 32, { min: 1, max: 1_024 }),
      attempts: read.integer('DELIVERY_ATTEMPTS', 10, { min: 1, max: 1_000 }),
      retryInitialMs: read.integer('RETRY_INITIAL_MS', 500, { min: 1, max: 3_600_000 }),
      retryMaxMs: read.integer('RETRY_MAX_MS', 60_000, { min: 1, max: 3_600_000 }),
      timeoutMs: read.integer('DELIVERY_TIMEOUT_MS', 60_000, { min: 1, max: 3_600_000 }),
    },
    leaseDurationMs: read.integer('LEASE_DURATION_MS', 15_000, { min: 500, max: 600_000 }),
    leaseRenewMs: read.integer('LEASE_RENEW_MS', 5_000, { min: 100, max: 600_000 }),
  };
  read.nested(() => checkRelations(config));
  read.finish('event-watcher');
  return config;
}

/** The lambda's name and each trigger's index are not checked by parseWatcherConfig; the keys and metrics depend on them. */
function compileTriggerConditions(watcher: WatcherConfig): EventWatcherConfig['conditions'] {
  const { lambda } = watcher;
  if (!lambda || !NAME.test(lambda.namespace ?? '') || !NAME.test(lambda.name ?? '')) {
    throw new Error('WATCHER_CONFIG: lambda must be {namespace, name} with Kubernetes names');
  }
  const problems: string[] = [];
  const conditions = watcher.triggers.map((trigger, i) => {
    if (!Number.isInteger(trigger.index) || trigger.index < 0) problems.push(`WATCHER_CONFIG: triggers[${i}].index must be a whole number from 0`);
    if (!trigger.condition) return undefined;
    const compiled = compileCondition(trigger.condition);
    if (!compiled.ok) {
      problems.push(`WATCHER_CONFIG: triggers[${i}].condition: ${compiled.message}`);
      return undefined;
    }
    return compiled.evaluate;
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return conditions;
}

function checkHttpUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name} must be a URL, not "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${name} must be an http or https URL, not "${value}"`);
}

function checkRelations(config: EventWatcherConfig): void {
  // A renewal must have a few chances inside one lease, or every hiccup loses the lease.
  if (config.leaseRenewMs * 2 > config.leaseDurationMs) {
    throw new Error(`LEASE_RENEW_MS (${config.leaseRenewMs}) must be at most half of LEASE_DURATION_MS (${config.leaseDurationMs})`);
  }
  if (config.delivery.retryInitialMs > config.delivery.retryMaxMs) {
    throw new Error(`RETRY_INITIAL_MS (${config.delivery.retryInitialMs}) must not exceed RETRY_MAX_MS (${config.delivery.retryMaxMs})`);
  }
}
