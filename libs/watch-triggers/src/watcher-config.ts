import { createHash } from 'node:crypto';

// What api-controller tells an event-watcher, as JSON in its Deployment's WATCHER_CONFIG: one
// contract, written by the controller (desired-watcher.ts) and read by the watcher at start.

export const WATCHER_CONFIG_ENV = 'WATCHER_CONFIG';
export const WATCH_EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED'] as const;
export type WatchEventType = (typeof WATCH_EVENT_TYPES)[number];

export interface LambdaName {
  namespace: string;
  name: string;
}

/** A trigger as the watcher runs it: the kind resolved to its API resource through discovery. */
export interface ResolvedWatchTrigger {
  /** Stable across restarts and unrelated spec changes: names the trigger's checkpoint. */
  id: string;
  /** Position in spec.triggers.watch, for logs and metrics. */
  index: number;
  apiVersion: string;
  kind: string;
  /** The plural resource name, for example configmaps. */
  resource: string;
  /** The namespace watched. */
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
  events: WatchEventType[];
  condition?: string;
}

export interface WatcherConfig {
  lambda: LambdaName;
  /** Where the lambda is reached through the runner: the Host header and path of its route. */
  target: { host: string; path: string };
  triggers: ResolvedWatchTrigger[];
}

/** The API path of a trigger's resource, for list and watch. */
export function resourcePath(trigger: Pick<ResolvedWatchTrigger, 'apiVersion' | 'resource' | 'namespace'>): string {
  const base = trigger.apiVersion.includes('/') ? `/apis/${trigger.apiVersion}` : `/api/${trigger.apiVersion}`;
  return `${base}/namespaces/${trigger.namespace}/${trigger.resource}`;
}

/**
 * A trigger's id: a digest of the stream it watches (resource, namespace, selectors). Changing
 * its events or condition keeps the checkpoint; watching something else starts a new one.
 */
export function watchTriggerId(trigger: Pick<ResolvedWatchTrigger, 'apiVersion' | 'resource' | 'namespace' | 'labelSelector' | 'fieldSelector'>): string {
  const stream = [trigger.apiVersion, trigger.resource, trigger.namespace, trigger.labelSelector ?? '', trigger.fieldSelector ?? ''];
  return createHash('sha256').update(JSON.stringify(stream)).digest('hex').slice(0, 16);
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Reads WATCHER_CONFIG, with an error naming the field that is wrong. */
export function parseWatcherConfig(raw: string | undefined): WatcherConfig {
  if (!raw?.trim()) throw new Error(`${WATCHER_CONFIG_ENV} is required: the JSON api-controller writes into the watcher's Deployment`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`${WATCHER_CONFIG_ENV} is not JSON: ${(error as Error).message}`);
  }
  const config = parsed as Partial<WatcherConfig>;
  const fail = (what: string) => {
    throw new Error(`${WATCHER_CONFIG_ENV}: ${what}`);
  };
  if (!config || typeof config !== 'object') fail('must be a JSON object');
  if (!config.lambda || !NAME.test(config.lambda.namespace ?? '') || !NAME.test(config.lambda.name ?? '')) fail('lambda must be {namespace, name}');
  if (!config.target || typeof config.target.host !== 'string' || typeof config.target.path !== 'string' || !config.target.path.startsWith('/')) {
    fail('target must be {host, path} with a path starting with /');
  }
  if (!Array.isArray(config.triggers) || config.triggers.length === 0) fail('triggers must be a non-empty list');
  for (const [i, trigger] of config.triggers!.entries()) {
    for (const field of ['id', 'apiVersion', 'kind', 'resource', 'namespace'] as const) {
      if (typeof trigger[field] !== 'string' || !trigger[field]) fail(`triggers[${i}].${field} must be a non-empty string`);
    }
    if (!Array.isArray(trigger.events) || trigger.events.length === 0 || !trigger.events.every((e) => WATCH_EVENT_TYPES.includes(e))) {
      fail(`triggers[${i}].events must list some of ${WATCH_EVENT_TYPES.join(', ')}`);
    }
    for (const field of ['labelSelector', 'fieldSelector', 'condition'] as const) {
      if (trigger[field] !== undefined && typeof trigger[field] !== 'string') fail(`triggers[${i}].${field} must be a string`);
    }
  }
  return config as WatcherConfig;
}
