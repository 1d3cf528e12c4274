import type { Condition } from '@kublambda/crd-types';

export type ConditionType = 'Built' | 'ImageReady' | 'Routed' | 'WatchersReady' | 'Ready';
export type ConditionStatus = Condition['status'];

export interface ConditionUpdate {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Sets one condition as Kubernetes API conventions want it: lastTransitionTime moves only
 * when the status changes; observedGeneration records the spec the condition is about.
 */
export function setCondition(conditions: Condition[], update: ConditionUpdate, generation: number, now: Date): Condition[] {
  const previous = conditions.find((c) => c.type === update.type);
  const lastTransitionTime = previous && previous.status === update.status ? previous.lastTransitionTime : now.toISOString();
  const next: Condition = { ...update, observedGeneration: generation, lastTransitionTime };
  return previous ? conditions.map((c) => (c.type === update.type ? next : c)) : [...conditions, next];
}

/** The conditions without one type, for a condition that no longer applies (WatchersReady once the watch triggers go). */
export function removeCondition(conditions: Condition[], type: ConditionType): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

export function conditionOf(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Ready summarises Built, ImageReady (with image builds on: the only case it is set), Routed and,
 * for a lambda with watch triggers, WatchersReady: true when all are; otherwise it carries the
 * first one that is False (a problem someone has to fix), else the first still Unknown.
 */
export function readiness(conditions: Condition[]): ConditionUpdate {
  const optional = (type: ConditionType) => (conditionOf(conditions, type) ? [type] : []);
  const types: ConditionType[] = ['Built', ...optional('ImageReady'), 'Routed', ...optional('WatchersReady')];
  const dependents = types.map((type) => ({ type, condition: conditionOf(conditions, type) }));
  const blocking = dependents.find(({ condition }) => condition?.status === 'False') ?? dependents.find(({ condition }) => condition?.status !== 'True');
  if (!blocking) {
    const image = types.includes('ImageReady') ? ', its image pushed' : '';
    const watchers = types.includes('WatchersReady') ? ', and its watchers run' : '';
    return { type: 'Ready', status: 'True', reason: 'Serving', message: `the lambda is built${image} and routed${watchers}` };
  }
  const { type, condition } = blocking;
  return {
    type: 'Ready',
    status: condition?.status === 'False' ? 'False' : 'Unknown',
    reason: condition?.reason ?? `${type}Pending`,
    message: condition?.message ?? `${type} has not been reported yet`,
  };
}

/** The transitions between two condition lists, for Kubernetes Events. */
export function conditionTransitions(before: Condition[], after: Condition[]): Condition[] {
  return after.filter((c) => {
    const old = before.find((b) => b.type === c.type);
    return !old || old.status !== c.status || old.reason !== c.reason;
  });
}
