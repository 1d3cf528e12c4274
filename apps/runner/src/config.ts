import os from 'node:os';
import path from 'node:path';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, type Env } from '@kublambda/config';
import { readRedisSettings, type RedisSettings } from '@kublambda/redis-connection';
import { parseEnvKeyRing, STANDALONE_LAMBDA_ENV, type EnvKeyRing, type RouteEnvEntry } from '@kublambda/route-table';

/** What both modes read: the server and the workers. */
export interface ServingConfig {
  host: string;
  port: number;
  maxBodyBytes: number;
  /** HOST_SUFFIX: a request for <host><suffix> is routed as for <host> (the local platform's ".localhost"). */
  hostSuffix?: string;
  maxWorkersPerLambda: number;
  workerPoolSize: number;
  workerIdleMs: number;
}

/** The runner pool: routes followed in Redis, assets from the artifact store. */
export interface RunnerConfig extends ServingConfig, RedisSettings {
  artifactStore: ArtifactStoreConfig;
  /** Decrypts the env values route records hold encrypted; never handed to a worker. */
  envKeys: EnvKeyRing;
  assetCacheDir: string;
  assetCacheMaxBytes: number;
}

/** One lambda on its own, as its image runs it (libs/route-table standalone.ts). */
export interface StandaloneRunnerConfig extends ServingConfig {
  /** lambda.json; the asset is lambda.mjs beside it. */
  lambdaFile: string;
  /** Without it the lambda's state-table operations fail with StateUnavailable. */
  redisUrl?: string;
  /** From the container's LAMBDA_ENV_<NAME> variables: the lambda's env, nothing else of the container's. */
  lambdaEnv: RouteEnvEntry[];
}

/** The prefix of the container variables that become the standalone lambda's env. */
export const LAMBDA_ENV_PREFIX = 'LAMBDA_ENV_';

/** Which runner the environment asks for: the base image sets KUBLAMBDA_STANDALONE_LAMBDA. */
export function runnerMode(env: Env): 'pool' | 'standalone' {
  return env[STANDALONE_LAMBDA_ENV]?.trim() ? 'standalone' : 'pool';
}

export function parseRunnerConfig(env: Env): RunnerConfig {
  const read = new EnvReader(env);
  const config = {
    ...readRedisSettings(read),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    envKeys: read.nested((env) => parseEnvKeyRing(env.ENV_ENCRYPTION_KEYS))!,
    ...readServingConfig(read, { workerPoolSize: 2 }),
    assetCacheDir: read.string('ASSET_CACHE_DIR', path.join(os.tmpdir(), 'kublambda-runner', 'assets')),
    assetCacheMaxBytes: read.integer('ASSET_CACHE_MAX_MIB', 1024, { min: 1, max: 1_048_576 }) * 1024 * 1024,
  };
  read.finish('runner');
  return config;
}

/** Neither the artifact store nor the env keys: the asset is in the image and the env values are literal. */
export function parseStandaloneRunnerConfig(env: Env): StandaloneRunnerConfig {
  const read = new EnvReader(env);
  const redisUrl = env.REDIS_URL?.trim();
  const config = {
    lambdaFile: read.string(STANDALONE_LAMBDA_ENV),
    ...(redisUrl ? { redisUrl } : {}),
    lambdaEnv: read.nested(standaloneLambdaEnv)!,
    // One lambda: one pooled worker makes its first cold start skip the spawn.
    ...readServingConfig(read, { workerPoolSize: 1 }),
  };
  read.finish('standalone runner');
  return config;
}

/** LAMBDA_ENV_GREETING=hi becomes GREETING=hi, sorted by name; an empty name is refused. */
export function standaloneLambdaEnv(env: Env): RouteEnvEntry[] {
  const entries: RouteEnvEntry[] = [];
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(LAMBDA_ENV_PREFIX) || value === undefined) continue;
    const name = variable.slice(LAMBDA_ENV_PREFIX.length);
    if (name === '') throw new Error(`${LAMBDA_ENV_PREFIX} names no variable: give ${LAMBDA_ENV_PREFIX}<NAME>=<value>`);
    entries.push({ name, value });
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function parseHostSuffix(env: Env): string | undefined {
  const raw = env.HOST_SUFFIX?.trim().toLowerCase();
  if (!raw) return undefined;
  if (!/^\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(raw)) throw new Error(`HOST_SUFFIX must be a domain suffix starting with a dot, for example .localhost, not "${env.HOST_SUFFIX?.trim()}"`);
  return raw;
}

function readServingConfig(read: EnvReader, defaults: { workerPoolSize: number }): ServingConfig {
  return {
    host: read.string('HOST', '0.0.0.0'),
    port: read.integer('PORT', 8080, { min: 0, max: 65_535 }),
    maxBodyBytes: read.integer('MAX_BODY_MIB', 32, { min: 1, max: 4096 }) * 1024 * 1024,
    hostSuffix: read.nested(parseHostSuffix),
    // One worker process uses one core; more than the cores buys a busy lambda nothing.
    maxWorkersPerLambda: read.integer('MAX_WORKERS_PER_LAMBDA', os.availableParallelism(), { min: 1, max: 64 }),
    // Each pooled worker is an idle Node process (about 40 MB); 0 turns the pool off.
    workerPoolSize: read.integer('WORKER_POOL_SIZE', defaults.workerPoolSize, { min: 0, max: 64 }),
    workerIdleMs: read.integer('WORKER_IDLE_SECONDS', 300, { min: 1, max: 86_400 }) * 1000,
  };
}
