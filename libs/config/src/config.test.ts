import { describe, expect, it } from '@jest/globals';
import { EnvReader, networkEnv } from './index.ts';

describe('EnvReader', () => {
  it('reads strings and integers with defaults', () => {
    const env = new EnvReader({ REDIS_URL: ' redis://x:1 ', WORKERS: '4' });
    expect(env.string('REDIS_URL')).toBe('redis://x:1');
    expect(env.string('MISSING', 'default')).toBe('default');
    expect(env.integer('WORKERS', 1, { min: 1, max: 64 })).toBe(4);
    expect(env.integer('UNSET', 7, { min: 1, max: 64 })).toBe(7);
    expect(() => env.finish('svc')).not.toThrow();
  });

  it('reports every problem at once, naming each variable', () => {
    const env = new EnvReader({ WORKERS: 'many', RETRIES: '0' });
    env.string('REDIS_URL');
    env.integer('WORKERS', 1, { min: 1, max: 64 });
    env.integer('RETRIES', 3, { min: 1, max: 10 });
    env.nested(() => {
      throw new Error('ARTIFACT_STORE_URL must start with file:// or s3://');
    });
    expect(() => env.finish('builder')).toThrow(
      'builder: invalid configuration:\n  - REDIS_URL is required\n  - WORKERS must be a whole number from 1 to 64, not "many"\n' +
        '  - RETRIES must be a whole number from 1 to 10, not "0"\n  - ARTIFACT_STORE_URL must start with file:// or s3://',
    );
  });
});

describe('networkEnv', () => {
  it('passes what reaching the network needs and nothing else', () => {
    expect(
      networkEnv({ PATH: '/bin', HOME: '/root', NODE_EXTRA_CA_CERTS: '/ca.pem', https_proxy: 'http://proxy:3128', REDIS_URL: 'redis://x', S3_SECRET_KEY: 'secret', EMPTY: '' }),
    ).toEqual({ PATH: '/bin', HOME: '/root', NODE_EXTRA_CA_CERTS: '/ca.pem', https_proxy: 'http://proxy:3128' });
  });
});
