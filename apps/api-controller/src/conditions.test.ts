import { describe, expect, it } from '@jest/globals';
import { conditionTransitions, readiness, setCondition } from './conditions.ts';

const t1 = new Date('2026-01-01T00:00:00Z');
const t2 = new Date('2026-01-01T00:05:00Z');

describe('setCondition', () => {
  it('adds a condition with the generation and time', () => {
    expect(setCondition([], { type: 'Built', status: 'Unknown', reason: 'Building', message: 'm' }, 3, t1)).toEqual([
      { type: 'Built', status: 'Unknown', reason: 'Building', message: 'm', observedGeneration: 3, lastTransitionTime: t1.toISOString() },
    ]);
  });

  it('keeps lastTransitionTime while the status stays, and moves it when the status changes', () => {
    const first = setCondition([], { type: 'Built', status: 'False', reason: 'CompileFailed', message: 'a' }, 1, t1);
    const same = setCondition(first, { type: 'Built', status: 'False', reason: 'CompileFailed', message: 'b' }, 2, t2);
    expect(same[0]).toMatchObject({ message: 'b', observedGeneration: 2, lastTransitionTime: t1.toISOString() });
    const changed = setCondition(same, { type: 'Built', status: 'True', reason: 'Built', message: 'ok' }, 2, t2);
    expect(changed[0]!.lastTransitionTime).toBe(t2.toISOString());
  });
});

describe('readiness', () => {
  const at = (list: Array<[string, 'True' | 'False' | 'Unknown', string]>) =>
    list.map(([type, status, reason]) => ({ type, status, reason, message: `${type} ${reason}`, lastTransitionTime: t1.toISOString() }));
  it.each([
    [at([['Built', 'True', 'Built'], ['Routed', 'True', 'Published']]), 'True', 'Serving'],
    [at([['Built', 'False', 'CompileFailed'], ['Routed', 'False', 'NotBuilt']]), 'False', 'CompileFailed'],
    [at([['Built', 'Unknown', 'Building'], ['Routed', 'True', 'Published']]), 'Unknown', 'Building'],
    [at([['Built', 'True', 'Built']]), 'Unknown', 'RoutedPending'],
    [at([['Built', 'Unknown', 'Building'], ['Routed', 'False', 'PathConflict']]), 'False', 'PathConflict'],
    [at([['Built', 'True', 'Built'], ['Routed', 'True', 'Published'], ['WatchersReady', 'True', 'Available']]), 'True', 'Serving'],
    [at([['Built', 'True', 'Built'], ['Routed', 'True', 'Published'], ['WatchersReady', 'Unknown', 'RollingOut']]), 'Unknown', 'RollingOut'],
    [at([['Built', 'Unknown', 'Building'], ['Routed', 'True', 'Published'], ['WatchersReady', 'False', 'Forbidden']]), 'False', 'Forbidden'],
    [at([['Built', 'True', 'Built'], ['ImageReady', 'True', 'Pushed'], ['Routed', 'True', 'Published']]), 'True', 'Serving'],
    [at([['Built', 'True', 'Built'], ['ImageReady', 'Unknown', 'Building'], ['Routed', 'True', 'Published']]), 'Unknown', 'Building'],
    [at([['Built', 'True', 'Built'], ['ImageReady', 'False', 'ImageBuildFailed'], ['Routed', 'True', 'Published']]), 'False', 'ImageBuildFailed'],
  ])('summarises %j as Ready=%s (%s)', (conditions, status, reason) => {
    expect(readiness(conditions)).toMatchObject({ type: 'Ready', status, reason });
  });
});

describe('conditionTransitions', () => {
  it('lists new conditions and changes of status or reason, not message-only changes', () => {
    const before = setCondition([], { type: 'Built', status: 'Unknown', reason: 'Building', message: 'a' }, 1, t1);
    let after = setCondition(before, { type: 'Built', status: 'Unknown', reason: 'Building', message: 'b' }, 1, t2);
    after = setCondition(after, { type: 'Routed', status: 'Unknown', reason: 'NotBuilt', message: 'c' }, 1, t2);
    expect(conditionTransitions(before, after).map((c) => c.type)).toEqual(['Routed']);
  });
});
