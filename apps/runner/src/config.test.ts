import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { generateEnvEncryptionKey } from '@kublambda/route-table';
import { parseRunnerConfig, parseStandaloneRunnerConfig, runnerMode, standaloneLambdaEnv } from './config.ts';

const required = { REDIS_URL: 'redis://127.0.0.1:6379', ARTIFACT_STORE_URL: 'file:///tmp/assets', ENV_ENCRYPTION_KEYS: `${generateEnvEncryptionKey('new')},${generateEnvEncryptionKey('old')}` };

describe('parseRunnerConfig', () => {
  it('has defaults for everything but Redis and the artifact store', () => {
    const config = parseRunnerConfig(required);
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      host: '0.0.0.0',
      port: 8080,
      assetCacheDir: path.join(os.tmpdir(), 'kublambda-runner', 'assets'),
      assetCacheMaxBytes: 1024 * 1024 * 1024,
      maxBodyBytes: 32 * 1024 * 1024,
      maxWorkersPerLambda: os.availableParallelism(),
      workerPoolSize: 2,
      workerIdleMs: 300_000,
    });
    expect(config.envKeys.ids).toEqual(['new', 'old']);
  });

  it('reads every setting', () => {
    const config = parseRunnerConfig({
      ...required, HOST: '127.0.0.1', PORT: '9000', ASSET_CACHE_DIR: '/var/cache/assets', ASSET_CACHE_MAX_MIB: '64',
      MAX_BODY_MIB: '4', MAX_WORKERS_PER_LAMBDA: '3', WORKER_POOL_SIZE: '0', WORKER_IDLE_SECONDS: '60',
    });
    expect(config).toMatchObject({
      host: '127.0.0.1', port: 9000, assetCacheDir: '/var/cache/assets', assetCacheMaxBytes: 64 * 1024 * 1024,
      maxBodyBytes: 4 * 1024 * 1024, maxWorkersPerLambda: 3, workerPoolSize: 0, workerIdleMs: 60_000,
    });
  });

  it('takes HOST_SUFFIX as a domain suffix, and refuses anything else', () => {
    expect(parseRunnerConfig({ ...required, HOST_SUFFIX: '.LocalHost' }).hostSuffix).toBe('.localhost');
    expect(parseRunnerConfig(required).hostSuffix).toBeUndefined();
    for (const bad of ['localhost', '.', '.local host', '.localhost:80']) {
      expect(() => parseRunnerConfig({ ...required, HOST_SUFFIX: bad })).toThrow(`HOST_SUFFIX must be a domain suffix starting with a dot, for example .localhost, not "${bad}"`);
    }
  });

  it('names every variable that is missing or out of range, at once', () => {
    expect(() => parseRunnerConfig({ PORT: '70000', MAX_WORKERS_PER_LAMBDA: '0', WORKER_POOL_SIZE: 'two' })).toThrow(
      [
        'runner: invalid configuration:',
        '  - REDIS_URL is required',
        '  - invalid artifact store configuration: ARTIFACT_STORE_URL is not set',
        '  - ENV_ENCRYPTION_KEYS is required: <key id>:<base64 of 32 random bytes>, comma-separated, the first one encrypting (for example from `openssl rand -base64 32`)',
        '  - PORT must be a whole number from 0 to 65535, not "70000"',
        '  - MAX_WORKERS_PER_LAMBDA must be a whole number from 1 to 64, not "0"',
        '  - WORKER_POOL_SIZE must be a whole number from 0 to 64, not "two"',
      ].join('\n'),
    );
  });
});

describe('parseStandaloneRunnerConfig', () => {
  const standalone = { KUBLAMBDA_STANDALONE_LAMBDA: '/lambda/lambda.json' };

  it('needs only the lambda file: no Redis, artifact store or env keys', () => {
    expect(runnerMode(standalone)).toBe('standalone');
    expect(runnerMode(required)).toBe('pool');
    const config = parseStandaloneRunnerConfig(standalone);
    expect(config).toEqual({
      lambdaFile: '/lambda/lambda.json', lambdaEnv: [], host: '0.0.0.0', port: 8080, maxBodyBytes: 32 * 1024 * 1024,
      maxWorkersPerLambda: os.availableParallelism(), workerPoolSize: 1, workerIdleMs: 300_000,
    });
  });

  it('takes REDIS_URL when given, for state tables', () => {
    expect(parseStandaloneRunnerConfig({ ...standalone, REDIS_URL: 'redis://127.0.0.1:6379' }).redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('gives the lambda the LAMBDA_ENV_ variables without their prefix, literal, and nothing else', () => {
    const config = parseStandaloneRunnerConfig({ ...standalone, LAMBDA_ENV_GREETING: 'hi', LAMBDA_ENV_EMPTY: '', LAMBDA_ENV_A: ' spaced ', HOME: '/root', PATH: '/bin' });
    expect(config.lambdaEnv).toEqual([{ name: 'A', value: ' spaced ' }, { name: 'EMPTY', value: '' }, { name: 'GREETING', value: 'hi' }]);
    expect(standaloneLambdaEnv({ LAMBDA_ENV_GREETING: 'hi' })).toEqual([{ name: 'GREETING', value: 'hi' }]);
  });

  it('refuses a LAMBDA_ENV_ variable that names nothing, and bad settings, at once', () => {
    expect(() => parseStandaloneRunnerConfig({ ...standalone, LAMBDA_ENV_: 'x', PORT: 'eighty' })).toThrow(
      ['standalone runner: invalid configuration:', '  - LAMBDA_ENV_ names no variable: give LAMBDA_ENV_<NAME>=<value>', '  - PORT must be a whole number from 0 to 65535, not "eighty"'].join('\n'),
    );
  });
});
