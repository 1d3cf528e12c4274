import os from 'node:os';
import path from 'node:path';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, type Env } from '@kublambda/config';
import { parseEnvKeyRing, type EnvKeyRing } from '@kublambda/route-table';

export interface RunnerConfig {
  redisUrl: string;
  artifactStore: ArtifactStoreConfig;
  /** Decrypts the env values route records hold encrypted; never handed to a worker. */
  envKeys: EnvKeyRing;
  host: string;
  port: number;
  assetCacheDir: string;
  assetCacheMaxBytes: number;
  maxBodyBytes: number;
  maxWorkersPerLambda: number;
  workerPoolSize: number;
  workerIdleMs: number;
}

export function parseRunnerConfig(env: Env): RunnerConfig {
  const read = new EnvReader(env);
  const config = {
    redisUrl: read.string('REDIS_URL'),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    envKeys: read.nested((env) => parseEnvKeyRing(env.ENV_ENCRYPTION_KEYS))!,
    host: read.string('HOST', '0.0.0.0'),
    port: read.integer('PORT', 8080, { min: 0, max: 65_535 }),
    assetCacheDir: read.string('ASSET_CACHE_DIR', path.join(os.tmpdir(), 'kublambda-runner', 'assets')),
    assetCacheMaxBytes: read.integer('ASSET_CACHE_MAX_MIB', 1024, { min: 1, max: 1_048_576 }) * 1024 * 1024,
    maxBodyBytes: read.integer('MAX_BODY_MIB', 32, { min: 1, max: 4096 }) * 1024 * 1024,
    // One worker process uses one core; more than the cores buys a busy lambda nothing.
    maxWorkersPerLambda: read.integer('MAX_WORKERS_PER_LAMBDA', os.availableParallelism(), { min: 1, max: 64 }),
    // Each pooled worker is an idle Node process (about 40 MB); 0 turns the pool off.
    workerPoolSize: read.integer('WORKER_POOL_SIZE', 2, { min: 0, max: 64 }),
    workerIdleMs: read.integer('WORKER_IDLE_SECONDS', 300, { min: 1, max: 86_400 }) * 1000,
  };
  read.finish('runner');
  return config;
}
