import os from 'node:os';
import path from 'node:path';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, type Env } from '@kublambda/config';

export interface BuilderConfig {
  redisUrl: string;
  artifactStore: ArtifactStoreConfig;
  concurrency: number;
  workRoot: string;
  npmCacheDir: string;
  /** A job whose worker stopped renewing its lock this long ago is taken over by another worker. */
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export function parseBuilderConfig(env: Env): BuilderConfig {
  const read = new EnvReader(env);
  const cacheRoot = read.string('BUILDER_CACHE_DIR', path.join(os.tmpdir(), 'kublambda-builder'));
  const config = {
    redisUrl: read.string('REDIS_URL'),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    concurrency: read.integer('BUILD_CONCURRENCY', 2, { min: 1, max: 64 }),
    workRoot: path.join(cacheRoot, 'work'),
    npmCacheDir: path.join(cacheRoot, 'npm'),
    lockDurationMs: read.integer('BUILD_LOCK_DURATION_MS', 30_000, { min: 1_000, max: 600_000 }),
    stalledIntervalMs: read.integer('BUILD_STALLED_INTERVAL_MS', 30_000, { min: 1_000, max: 600_000 }),
  };
  read.finish('builder');
  return config;
}
