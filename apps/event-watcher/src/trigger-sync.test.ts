import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from './kube-object.ts';
import { applyWatchEvent, isNewer } from './trigger-sync.ts';

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

  it('skips a version already known or older (a watch resumed from the checkpoint replays them)', () => {
    const known = new Map([['a', object('a', '7')]]);
    expect(applyWatchEvent(known, 'ADDED', object('a', '7'))).toBeUndefined();
    expect(applyWatchEvent(known, 'MODIFIED', object('a', '5'))).toBeUndefined();
    expect(known.get('a')).toEqual(object('a', '7'));
    expect(applyWatchEvent(known, 'DELETED', object('a', '8'))?.type).toBe('DELETED');
  });

  it('compares resourceVersions as etcd revisions when they are numbers', () => {
    expect(isNewer('10', '9')).toBe(true);
    expect(isNewer('9', '10')).toBe(false);
    expect(isNewer('12345678901234567890', '12345678901234567889')).toBe(true);
    expect(isNewer('b', 'a')).toBe(true);
    expect(isNewer('a', 'a')).toBe(false);
  });
});
