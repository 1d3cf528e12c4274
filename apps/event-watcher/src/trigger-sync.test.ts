import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from './kube-object.ts';
import { applyWatchEvent } from './trigger-sync.ts';

const object = (uid: string, resourceVersion: string): KubeObject => ({ metadata: { uid, resourceVersion } });

describe('applyWatchEvent', () => {
  it('gives oldObject from what was known and updates it', () => {
    const known = new Map([['a', object('a', '1')]]);
    expect(applyWatchEvent(known, 'MODIFIED', object('a', '2'))).toEqual({ type: 'MODIFIED', object: object('a', '2'), oldObject: object('a', '1') });
    expect(known.get('a')).toEqual(object('a', '2'));
    expect(applyWatchEvent(known, 'DELETED', object('a', '3'))).toEqual({ type: 'DELETED', object: object('a', '3'), oldObject: object('a', '2') });
    expect(known.has('a')).toBe(false);
  });

  it('types the change by what was known', () => {
    const known = new Map([['a', object('a', '1')]]);
    expect(applyWatchEvent(known, 'ADDED', object('a', '2'))?.type).toBe('MODIFIED');
    expect(applyWatchEvent(known, 'MODIFIED', object('b', '5'))).toEqual({ type: 'ADDED', object: object('b', '5'), oldObject: null });
  });

  it('skips a version already known (a re-watch overlapping a list)', () => {
    const known = new Map([['a', object('a', '1')]]);
    expect(applyWatchEvent(known, 'ADDED', object('a', '1'))).toBeUndefined();
  });
});
