import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { generateEnvEncryptionKey, parseEnvKeyRing, type RouteEnvEntry } from '@kublambda/route-table';
import { encryptSecretValues, EnvReferenceError, resolveEnv } from './lambda-env.ts';

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
  it('turns every entry into a value, in order, marking those from Secrets, reading each object once', async () => {
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
      { name: 'PLAIN', value: 'p', fromSecret: false },
      { name: 'TOKEN', value: 's3cret', fromSecret: true },
      { name: 'MODE', value: 'fast', fromSecret: false },
      { name: 'EMPTY', value: '', fromSecret: false },
      { name: 'UNSET', value: '', fromSecret: false },
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

describe('encryptSecretValues', () => {
  const oldKey = generateEnvEncryptionKey('old');
  const keys = parseEnvKeyRing(oldKey);
  const resolved = [
    { name: 'PLAIN', value: 'p', fromSecret: false },
    { name: 'TOKEN', value: 's3cret', fromSecret: true },
  ];
  const encryptedOf = (env: RouteEnvEntry[], name: string) => {
    const entry = env.find((e) => e.name === name);
    if (!entry || !('encrypted' in entry)) throw new Error(`env ${name} is not encrypted: ${JSON.stringify(entry)}`);
    return entry.encrypted;
  };

  it('encrypts Secret values for this lambda and leaves the others plain', () => {
    const env = encryptSecretValues(resolved, 'shop/orders', keys);
    expect(env[0]).toEqual({ name: 'PLAIN', value: 'p' });
    expect(JSON.stringify(env)).not.toContain('s3cret');
    expect(keys.decrypt(encryptedOf(env, 'TOKEN'), { lambdaKey: 'shop/orders', name: 'TOKEN' })).toBe('s3cret');
  });

  it('gives the same record for the same values, so a reconcile that changed nothing publishes nothing', () => {
    const published = encryptSecretValues(resolved, 'shop/orders', keys);
    expect(JSON.stringify(encryptSecretValues(resolved, 'shop/orders', keys, published))).toBe(JSON.stringify(published));
  });

  it('encrypts afresh when the Secret value changed, or when a new key comes first', () => {
    const published = encryptSecretValues(resolved, 'shop/orders', keys);
    const changed = encryptSecretValues([resolved[0]!, { ...resolved[1]!, value: 'rotated' }], 'shop/orders', keys, published);
    expect(keys.decrypt(encryptedOf(changed, 'TOKEN'), { lambdaKey: 'shop/orders', name: 'TOKEN' })).toBe('rotated');
    const rotatedKeys = parseEnvKeyRing(`${generateEnvEncryptionKey('new')},${oldKey}`);
    const rotated = encryptSecretValues(resolved, 'shop/orders', rotatedKeys, published);
    expect(encryptedOf(rotated, 'TOKEN').keyId).toBe('new');
    expect(rotatedKeys.decrypt(encryptedOf(rotated, 'TOKEN'), { lambdaKey: 'shop/orders', name: 'TOKEN' })).toBe('s3cret');
  });

  it('encrypts a value published in plaintext before', () => {
    const env = encryptSecretValues(resolved, 'shop/orders', keys, [{ name: 'TOKEN', value: 's3cret' }]);
    expect(encryptedOf(env, 'TOKEN').keyId).toBe('old');
  });
});
