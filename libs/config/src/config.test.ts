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

describe('EnvReader numbers', () => {
  it('reads fractions within bounds, exclusive bounds refusing the bound itself', () => {
    const env = new EnvReader({ UTILIZATION: '0.7', ZERO: '0', ONE: '1', WORD: 'high', HUGE: 'Infinity' });
    expect(env.number('UTILIZATION', 0.5, { min: 0, max: 1, minExclusive: true })).toBe(0.7);
    expect(env.number('UNSET', 0.5, { min: 0, max: 1 })).toBe(0.5);
    env.number('ZERO', 0.5, { min: 0, max: 1, minExclusive: true });
    env.number('ONE', 0.5, { min: 0, max: 1, maxExclusive: true });
    env.number('WORD', 0.5, { min: 0, max: 1 });
    env.number('HUGE', 1, { min: 0, max: Number.MAX_VALUE });
    env.problem('MIN_X is more than MAX_X');
    expect(() => env.finish('svc')).toThrow(
      'svc: invalid configuration:\n  - ZERO must be a number greater than 0 and at most 1, not "0"\n  - ONE must be a number at least 0 and less than 1, not "1"\n' +
        '  - WORD must be a number at least 0 and at most 1, not "high"\n  - HUGE must be a number at least 0 and at most 1.7976931348623157e+308, not "Infinity"\n  - MIN_X is more than MAX_X',
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
