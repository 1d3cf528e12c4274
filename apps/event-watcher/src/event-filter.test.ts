import { describe, expect, it } from '@jest/globals';
import { compileCondition } from '@kublambda/watch-triggers';
import { filterChange } from './event-filter.ts';
import type { ResourceChange } from './kube-object.ts';

const compiled = (source: string) => {
  const result = compileCondition(source);
  if (!result.ok) throw new Error(result.message);
  return result.evaluate;
};
const change = (type: ResourceChange['type'], data: Record<string, string>, oldData?: Record<string, string>): ResourceChange => ({
  type,
  object: { metadata: { uid: 'u', resourceVersion: '2' }, data },
  oldObject: oldData ? { metadata: { uid: 'u', resourceVersion: '1' }, data: oldData } : null,
});

describe('filterChange', () => {
  const enabled = compiled('object.data.enabled == "true"');
  it.each([
    { name: 'no condition', change: change('ADDED', {}), events: ['ADDED'], condition: undefined, expected: { matched: true } },
    { name: 'event type not wanted', change: change('DELETED', { enabled: 'true' }), events: ['ADDED', 'MODIFIED'], condition: enabled, expected: { matched: false, reason: 'event-type' } },
    { name: 'condition true', change: change('MODIFIED', { enabled: 'true' }, {}), events: ['MODIFIED'], condition: enabled, expected: { matched: true } },
    { name: 'condition false', change: change('MODIFIED', { enabled: 'no' }, {}), events: ['MODIFIED'], condition: enabled, expected: { matched: false, reason: 'condition' } },
    {
      name: 'condition over oldObject',
      change: change('MODIFIED', { v: '2' }, { v: '1' }),
      events: ['MODIFIED'],
      condition: compiled('type == "MODIFIED" && object.data.v != oldObject.data.v'),
      expected: { matched: true },
    },
  ] as const)('$name', ({ change, events, condition, expected }) => {
    expect(filterChange(change, events, condition)).toEqual(expected);
  });

  it('counts an evaluation error as not matched, with the error', () => {
    const verdict = filterChange(change('ADDED', {}), ['ADDED'], enabled);
    expect(verdict).toMatchObject({ matched: false, reason: 'condition-error' });
    expect((verdict as { error: string }).error).toBeTruthy();
  });
});
