import type { ConditionInput, ConditionVerdict, WatchEventType } from '@kublambda/watch-triggers';
import type { ResourceChange } from './kube-object.ts';

export type FilterVerdict = { matched: true } | { matched: false; reason: 'event-type' | 'condition' } | { matched: false; reason: 'condition-error'; error: string };

/** Whether a trigger wants a change: its event types first, then its condition (an error counts as no). */
export function filterChange(change: ResourceChange, events: readonly WatchEventType[], condition: ((input: ConditionInput) => ConditionVerdict) | undefined): FilterVerdict {
  if (!events.includes(change.type)) return { matched: false, reason: 'event-type' };
  if (!condition) return { matched: true };
  const verdict = condition({ type: change.type, object: change.object, oldObject: change.oldObject });
  if ('error' in verdict) return { matched: false, reason: 'condition-error', error: verdict.error };
  return verdict.matched ? { matched: true } : { matched: false, reason: 'condition' };
}
