import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { EnvReferenceError, resolveEnv } from './lambda-env.ts';

const lambda = (env: Lambda['spec']['env']): Lambda => ({
  apiVersion: 'kublambda.io/v1alpha1',
  kind: 'Lambda',
  metadata: { namespace: 'shop', name: 'orders' },
  spec: { source: { inline: 'x' }, env },
});

const objects: Record<string, Record<string, string>> = {
  'Secret shop/api': { token: 's3cret' },
  'ConfigMap shop/settings': { mode: 'fast', empty: '' },
};
const reads: string[] = [];
const read = {
  secret: async (namespace: string, name: string) => (reads.push(`Secret ${namespace}/${name}`), objects[`Secret ${namespace}/${name}`]),
  configMap: async (namespace: string, name: string) => (reads.push(`ConfigMap ${namespace}/${name}`), objects[`ConfigMap ${namespace}/${name}`]),
};

describe('resolveEnv', () => {
  it('turns every entry into a plain value, in order, reading each object once', async () => {
    reads.length = 0;
    const env = await resolveEnv(
      lambda([
        { name: 'PLAIN', value: 'p' },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
        { name: 'EMPTY', valueFrom: { configMapKeyRef: { name: 'settings', key: 'empty' } } },
        { name: 'UNSET' },
      ]),
      read,
    );
    expect(env).toEqual([
      { name: 'PLAIN', value: 'p' },
      { name: 'TOKEN', value: 's3cret' },
      { name: 'MODE', value: 'fast' },
      { name: 'EMPTY', value: '' },
      { name: 'UNSET', value: '' },
    ]);
    expect(reads).toEqual(['Secret shop/api', 'ConfigMap shop/settings']);
  });

  it('has nothing to resolve without env', async () => {
    expect(await resolveEnv(lambda(undefined), read)).toEqual([]);
  });

  it('names every missing object and key', async () => {
    const resolving = resolveEnv(
      lambda([
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'password' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'absent', key: 'mode' } } },
        { name: 'OK', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
      ]),
      read,
    );
    await expect(resolving).rejects.toThrow(EnvReferenceError);
    await expect(resolving).rejects.toThrow('Secret shop/api has no key "password" (env TOKEN); ConfigMap shop/absent does not exist (env MODE)');
  });
});
