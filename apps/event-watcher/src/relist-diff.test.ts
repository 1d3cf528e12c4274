import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from './kube-object.ts';
import { diffRelist } from './relist-diff.ts';

const object = (uid: string, resourceVersion: string): KubeObject => ({ metadata: { uid, resourceVersion, name: `cm-${uid}`, namespace: 'ns' } });
const known = (...objects: KubeObject[]) => new Map(objects.map((o) => [o.metadata!.uid!, o]));
const summary = (changes: ReturnType<typeof diffRelist>) => changes.map((c) => `${c.type} ${c.object.metadata!.uid}@${c.object.metadata!.resourceVersion} old=${c.oldObject?.metadata?.resourceVersion ?? '-'}`);

describe('diffRelist', () => {
  it.each([
    { name: 'first start: everything listed is ADDED', known: known(), listed: [object('a', '1'), object('b', '2')], expected: ['ADDED a@1 old=-', 'ADDED b@2 old=-'] },
    { name: 'nothing changed: nothing to do', known: known(object('a', '1')), listed: [object('a', '1')], expected: [] },
    { name: 'another resourceVersion: MODIFIED with the known copy as old', known: known(object('a', '1')), listed: [object('a', '5')], expected: ['MODIFIED a@5 old=1'] },
    { name: 'missing from the list: DELETED with the last known state', known: known(object('a', '1'), object('b', '3')), listed: [object('b', '3')], expected: ['DELETED a@1 old=1'] },
    { name: 'empty list: everything known is DELETED', known: known(object('a', '1')), listed: [], expected: ['DELETED a@1 old=1'] },
    {
      name: 'a name reused by a new object (new uid): the old one DELETED, the new one ADDED',
      known: known(object('a', '1')),
      listed: [object('a2', '7')],
      expected: ['ADDED a2@7 old=-', 'DELETED a@1 old=1'],
    },
  ])('$name', ({ known, listed, expected }) => {
    expect(summary(diffRelist(known, listed))).toEqual(expected);
  });
});
