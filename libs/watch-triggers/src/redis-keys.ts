import type { LambdaName } from './watcher-config.ts';

// A watcher's keys in Redis. All of them sit under one prefix with a hash tag per lambda, so
// the watcher's own Redis user can be limited to exactly its lambda's keys, and in Redis
// Cluster they live in one slot (its scripts touch several of them at once).

export const WATCHER_KEY_PREFIX = 'kublambda:watch:';

export function watcherKeyPrefix(lambda: LambdaName): string {
  return `${WATCHER_KEY_PREFIX}{${lambda.namespace}/${lambda.name}}:`;
}

export function watcherKeys(lambda: LambdaName) {
  const prefix = watcherKeyPrefix(lambda);
  return {
    /** Every key of this lambda's watcher, as a glob (the Redis user's key pattern). */
    pattern: `${prefix}*`,
    /** Which watcher may deliver: its holder id, with an expiry. */
    lease: `${prefix}lease`,
    /** Per trigger, a hash uid -> the object as last delivered (JSON). */
    objects: (triggerId: string) => `${prefix}objects:${triggerId}`,
    /** Per trigger, the resourceVersion up to which everything was delivered. */
    resourceVersion: (triggerId: string) => `${prefix}rv:${triggerId}`,
    /** The ids of the triggers that have checkpoints here, so they can all be removed. */
    triggerIds: `${prefix}trigger-ids`,
    /** Events that failed past the retry budget, newest first, bounded. */
    deadLetters: `${prefix}dead-letters`,
  };
}

/** The Redis user of one lambda's watcher. Namespaces have no dots, so this is unambiguous. */
export function watcherRedisUser(lambda: LambdaName): string {
  return `watcher.${lambda.namespace}.${lambda.name}`;
}

/** What the dead-letter list holds, one JSON entry per event. */
export interface DeadLetter {
  /** The CloudEvent id: the same for every delivery of this object version. */
  id: string;
  type: string;
  subject: string;
  triggerIndex: number;
  attempts: number;
  lastError: string;
  /** When it was given up on (RFC 3339). */
  deadAt: string;
  /** The object as it would have been delivered. */
  object: unknown;
  /** The event's source and time as first sent, so a retry sends the same event (absent in older entries). */
  source?: string;
  time?: string;
}

/** At most this many dead letters are kept per lambda; older ones are dropped. */
export const DEAD_LETTER_LIMIT = 1_000;
