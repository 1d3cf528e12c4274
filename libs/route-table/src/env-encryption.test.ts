import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { decryptRouteEnv, EnvDecryptionError, generateEnvEncryptionKey, parseEnvKeyRing } from './env-encryption.ts';
import type { EncryptedEnvValue } from './index.ts';

const oldKey = generateEnvEncryptionKey('old');
const newKey = generateEnvEncryptionKey('new');
const context = { lambdaKey: 'shop/orders', name: 'TOKEN' };

/** The same bytes with one bit of the base64 field flipped. */
function flipBit(base64: string): string {
  const bytes = Buffer.from(base64, 'base64');
  bytes[0]! ^= 1;
  return bytes.toString('base64');
}

describe('EnvKeyRing', () => {
  it('decrypts what it encrypted, with the current key id beside the value', () => {
    const keys = parseEnvKeyRing(`${newKey},${oldKey}`);
    const encrypted = keys.encrypt('s3cret ünïcode', context);
    expect(encrypted.keyId).toBe('new');
    expect(JSON.stringify(encrypted)).not.toContain('s3cret');
    expect(keys.decrypt(encrypted, context)).toBe('s3cret ünïcode');
    expect(keys.decrypt(keys.encrypt('', context), context)).toBe('');
  });

  it('uses a fresh IV for every value', () => {
    const keys = parseEnvKeyRing(newKey);
    const [first, second] = [keys.encrypt('same', context), keys.encrypt('same', context)];
    expect(Buffer.from(first.iv, 'base64')).toHaveLength(12);
    expect(first.iv).not.toBe(second.iv);
    expect(first.ciphertext).not.toBe(second.ciphertext);
  });

  it('decrypts values written with an older key of the ring', () => {
    const written = parseEnvKeyRing(oldKey).encrypt('s3cret', context);
    expect(parseEnvKeyRing(`${newKey},${oldKey}`).decrypt(written, context)).toBe('s3cret');
  });

  it('refuses a value under a key id it does not hold, naming the lambda, env and key', () => {
    const written = parseEnvKeyRing(oldKey).encrypt('s3cret', context);
    expect(() => parseEnvKeyRing(newKey).decrypt(written, context)).toThrow(
      new EnvDecryptionError('env TOKEN of lambda shop/orders is encrypted with key "old", which is not among the keys in ENV_ENCRYPTION_KEYS (new)'),
    );
  });

  it('refuses a value whose ciphertext, tag, IV or key id was altered', () => {
    const keys = parseEnvKeyRing(`${newKey},${oldKey}`);
    const encrypted = keys.encrypt('s3cret', context);
    const tampered: EncryptedEnvValue[] = [
      { ...encrypted, ciphertext: flipBit(encrypted.ciphertext) },
      { ...encrypted, tag: flipBit(encrypted.tag) },
      { ...encrypted, iv: flipBit(encrypted.iv) },
      { ...encrypted, keyId: 'old' },
    ];
    for (const value of tampered) expect(() => keys.decrypt(value, context)).toThrow(/fails authentication under key/);
  });

  it('refuses a value moved to another lambda or another env name', () => {
    const keys = parseEnvKeyRing(newKey);
    const encrypted = keys.encrypt('s3cret', context);
    expect(() => keys.decrypt(encrypted, { ...context, lambdaKey: 'other/orders' })).toThrow(
      'env TOKEN of lambda other/orders fails authentication under key "new": it was altered, or encrypted for another lambda or env name',
    );
    expect(() => keys.decrypt(encrypted, { ...context, name: 'OTHER' })).toThrow(EnvDecryptionError);
  });

  it('keeps the previous ciphertext while value and key are unchanged, and encrypts afresh otherwise', () => {
    const before = parseEnvKeyRing(oldKey);
    const previous = before.encrypt('s3cret', context);
    expect(before.encryptUnlessUnchanged('s3cret', context, previous)).toBe(previous);
    const changed = before.encryptUnlessUnchanged('rotated', context, previous);
    expect(before.decrypt(changed, context)).toBe('rotated');
    expect(before.encryptUnlessUnchanged('s3cret', { ...context, name: 'OTHER' }, previous)).not.toBe(previous);
    // Once a new key comes first, values are encrypted with it again.
    const rotated = parseEnvKeyRing(`${newKey},${oldKey}`).encryptUnlessUnchanged('s3cret', context, previous);
    expect(rotated.keyId).toBe('new');
    expect(before.encryptUnlessUnchanged('s3cret', context, undefined)).not.toBe(previous);
  });
});

describe('decryptRouteEnv', () => {
  it('gives plain values as they are and decrypts encrypted ones, in order', () => {
    const keys = parseEnvKeyRing(newKey);
    const env = [
      { name: 'PLAIN', value: 'p' },
      { name: 'TOKEN', encrypted: keys.encrypt('s3cret', context) },
    ];
    expect(decryptRouteEnv({ key: 'shop/orders', env }, keys)).toEqual({ PLAIN: 'p', TOKEN: 's3cret' });
    expect(() => decryptRouteEnv({ key: 'shop/other', env }, keys)).toThrow('env TOKEN of lambda shop/other fails authentication');
  });
});

describe('parseEnvKeyRing', () => {
  const key = randomBytes(32).toString('base64');
  it('accepts comma-separated ids and keys, the first one encrypting', () => {
    const keys = parseEnvKeyRing(` k2:${key} , k-1.a_b:${randomBytes(32).toString('base64')}`);
    expect(keys.current.id).toBe('k2');
    expect(keys.ids).toEqual(['k2', 'k-1.a_b']);
  });

  it.each([
    ['nothing', undefined, 'ENV_ENCRYPTION_KEYS is required: <key id>:<base64 of 32 random bytes>, comma-separated, the first one encrypting'],
    ['only separators', ' , ', 'ENV_ENCRYPTION_KEYS is required'],
    ['a key without an id', key, 'ENV_ENCRYPTION_KEYS entry 1 has no key id'],
    ['an empty key id', `:${key}`, 'ENV_ENCRYPTION_KEYS entry 1: the key id "" must be'],
    ['a key id with a space', `k1:${key},bad id:${key}`, 'ENV_ENCRYPTION_KEYS entry 2: the key id "bad id" must be'],
    ['a key that is not base64', 'k1:not*base64', 'ENV_ENCRYPTION_KEYS entry 1 (key id "k1"): the key is not valid base64'],
    ['truncated base64', `k1:${key.slice(0, -1)}`, 'ENV_ENCRYPTION_KEYS entry 1 (key id "k1"): the key is not valid base64'],
    ['a 16-byte key', `k1:${randomBytes(16).toString('base64')}`, 'ENV_ENCRYPTION_KEYS entry 1 (key id "k1"): the key is 16 bytes, AES-256 needs 32'],
    ['a key id given twice', `k1:${key},k1:${randomBytes(32).toString('base64')}`, 'ENV_ENCRYPTION_KEYS names key id "k1" more than once'],
  ])('refuses %s', (_label, raw, message) => {
    expect(() => parseEnvKeyRing(raw)).toThrow(message);
  });

  it('never puts key material in its errors', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => parseEnvKeyRing(`k1:${short}`)).toThrow(expect.objectContaining({ message: expect.not.stringContaining(short) }));
  });
});
