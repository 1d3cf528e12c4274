import net from 'node:net';
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
  /** The admin HTTP server (/healthz, /metrics, the build board); absent unless ADMIN_PORT is set. */
  admin?: AdminConfig;
}

export interface AdminConfig {
  host: string;
  port: number;
  /** Whether the build board may retry and remove jobs; read-only otherwise. */
  boardActions: boolean;
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
    admin: read.nested(parseAdminConfig),
  };
  read.finish('builder');
  return config;
}

/** Off (undefined) unless ADMIN_PORT is set; loopback unless ADMIN_HOST says otherwise. */
export function parseAdminConfig(env: Env): AdminConfig | undefined {
  const problems: string[] = [];
  const port = env.ADMIN_PORT?.trim();
  const host = env.ADMIN_HOST?.trim() || '127.0.0.1';
  const actions = env.BUILD_BOARD_ACTIONS?.trim().toLowerCase() || 'false';
  if (port && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) problems.push(`ADMIN_PORT must be a whole number from 1 to 65535, not "${port}"`);
  if (!net.isIP(host) && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host)) problems.push(`ADMIN_HOST must be an IP address or a host name, not "${host}"`);
  if (actions !== 'true' && actions !== 'false') problems.push(`BUILD_BOARD_ACTIONS must be true or false, not "${env.BUILD_BOARD_ACTIONS?.trim()}"`);
  if (!port) {
    // The admin server is off; settings for it would be silently ignored.
    for (const name of ['ADMIN_HOST', 'BUILD_BOARD_ACTIONS']) {
      if (env[name]?.trim()) problems.push(`${name} is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('\n  - '));
  return port ? { host, port: Number(port), boardActions: actions === 'true' } : undefined;
}
