import type { WatchEventType } from '@kublambda/watch-triggers';

/** What the watcher reads of any watched object; the rest is passed through untouched. */
export interface KubeObject {
  metadata?: { uid?: string; resourceVersion?: string; name?: string; namespace?: string };
  [field: string]: unknown;
}

/** One change to deliver (or to filter out): what the condition sees, plus when it was seen. */
export interface ResourceChange {
  type: WatchEventType;
  object: KubeObject;
  /** The object before this change; null for ADDED. */
  oldObject: KubeObject | null;
}

export function uidOf(object: KubeObject): string {
  return object.metadata?.uid ?? '';
}

export function resourceVersionOf(object: KubeObject): string {
  return object.metadata?.resourceVersion ?? '';
}
