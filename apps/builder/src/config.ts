import os from 'node:os';
import path from 'node:path';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { readRedisUrl } from '@kublambda/redis-connection';
import { EnvReader, parseAdminListener, type Env } from '@kublambda/config';
import { KANIKO_ONLY, parseKanikoSettings, type KanikoImageBackendConfig } from './kaniko-config.ts';

export interface BuilderConfig {
  redisUrl: string;
  artifactStore: ArtifactStoreConfig;
  concurrency: number;
  workRoot: string;
  npmCacheDir: string;
  /** NPM_REGISTRY: where lambdas' npm dependencies come from; npm's default registry when unset. */
  npmRegistry?: string;
  /** A job whose worker stopped renewing its lock this long ago is taken over by another worker. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** The admin HTTP server (/healthz, /metrics, the build board); absent unless ADMIN_PORT is set. */
  admin?: AdminConfig;
  /** How image jobs are built: off (each one fails with a clear result), straight to a registry, or by a Kaniko Job. */
  image: ImageBackendConfig;
}

export type ImageBackendConfig = { backend: 'off' } | DirectImageBackendConfig | KanikoImageBackendConfig;

/** The builder assembles the image itself (base + one layer) and pushes it to the registry. */
export interface DirectImageBackendConfig {
  backend: 'direct';
  registry: { url: string; username?: string; password?: string; insecure: boolean };
  /** The runner base image, a repository of that same registry, by tag or digest. */
  base: { repo: string; reference: string };
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
  // Read in this order so that problems are listed in it.
  const redisUrl = readRedisUrl(read);
  const artifactStore = read.nested(parseArtifactStoreConfig);
  const config = {
    redisUrl,
    artifactStore: artifactStore!,
    concurrency: read.integer('BUILD_CONCURRENCY', 2, { min: 1, max: 64 }),
    workRoot: path.join(cacheRoot, 'work'),
    npmCacheDir: path.join(cacheRoot, 'npm'),
    npmRegistry: read.nested(parseNpmRegistry),
    lockDurationMs: read.integer('BUILD_LOCK_DURATION_MS', 30_000, { min: 1_000, max: 600_000 }),
    stalledIntervalMs: read.integer('BUILD_STALLED_INTERVAL_MS', 30_000, { min: 1_000, max: 600_000 }),
    admin: read.nested(parseAdminConfig),
    image: read.nested((env) => parseImageBackendConfig(env, artifactStore)) ?? { backend: 'off' as const },
  };
  read.finish('builder');
  return config;
}

function parseNpmRegistry(env: Env): string | undefined {
  const value = env.NPM_REGISTRY?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`NPM_REGISTRY must be an http:// or https:// URL, for example https://registry.npmjs.org/, not "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`NPM_REGISTRY must be an http:// or https:// URL, for example https://registry.npmjs.org/, not "${value}"`);
  return value;
}

/** Off (undefined) unless ADMIN_PORT is set; loopback unless ADMIN_HOST says otherwise. */
export function parseAdminConfig(env: Env): AdminConfig | undefined {
  const { listener, problems } = parseAdminListener(env, ['BUILD_BOARD_ACTIONS']);
  const actions = env.BUILD_BOARD_ACTIONS?.trim().toLowerCase() || 'false';
  if (actions !== 'true' && actions !== 'false') problems.push(`BUILD_BOARD_ACTIONS must be true or false, not "${env.BUILD_BOARD_ACTIONS?.trim()}"`);
  if (problems.length > 0) throw new Error(problems.join('\n  - '));
  return listener ? { ...listener, boardActions: actions === 'true' } : undefined;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const REGISTRY_SETTINGS = ['IMAGE_REGISTRY_URL', 'IMAGE_REGISTRY_USERNAME', 'IMAGE_REGISTRY_PASSWORD', 'IMAGE_REGISTRY_INSECURE', 'IMAGE_BASE'];

/**
 * IMAGE_BACKEND: off (the default), direct (IMAGE_REGISTRY_* and IMAGE_BASE), or kaniko
 * (IMAGE_REGISTRY_URL, IMAGE_REGISTRY_INSECURE and IMAGE_BASE as the build pod sees them, and
 * KANIKO_*; the build context goes to the artifact store's bucket, so that must be S3).
 */
export function parseImageBackendConfig(env: Env, artifactStore?: ArtifactStoreConfig): ImageBackendConfig {
  const problems: string[] = [];
  const value = (name: string) => env[name]?.trim() || undefined;
  const backend = (value('IMAGE_BACKEND') ?? 'off').toLowerCase();
  if (backend !== 'off' && backend !== 'direct' && backend !== 'kaniko') throw new Error(`IMAGE_BACKEND must be off, direct or kaniko, not "${value('IMAGE_BACKEND')}"`);
  // Settings for a backend that is not chosen would be silently ignored.
  if (backend !== 'kaniko') {
    for (const name of KANIKO_ONLY) if (value(name)) problems.push(`${name} is set but IMAGE_BACKEND is ${backend} (it is read with IMAGE_BACKEND=kaniko only)`);
  }
  if (backend === 'off') {
    for (const name of REGISTRY_SETTINGS) if (value(name)) problems.push(`${name} is set but IMAGE_BACKEND is off (set IMAGE_BACKEND=direct to build images)`);
    if (problems.length > 0) throw new Error(problems.join('\n  - '));
    return { backend: 'off' };
  }

  const insecureValue = (value('IMAGE_REGISTRY_INSECURE') ?? 'false').toLowerCase();
  if (insecureValue !== 'true' && insecureValue !== 'false') problems.push(`IMAGE_REGISTRY_INSECURE must be true or false, not "${value('IMAGE_REGISTRY_INSECURE')}"`);
  const insecure = insecureValue === 'true';
  const reaches = backend === 'direct' ? 'the builder reaches it' : 'the build pod reaches it';

  const url = value('IMAGE_REGISTRY_URL');
  let registryUrl: URL | undefined;
  if (!url) problems.push(`IMAGE_REGISTRY_URL is required with IMAGE_BACKEND=${backend} (http(s)://host[:port] of the registry, as ${reaches})`);
  else {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.pathname !== '/' || parsed.search || parsed.hash || parsed.username || parsed.password) {
      problems.push(`IMAGE_REGISTRY_URL must be http(s)://host[:port] with no path, query or credentials, not "${url}"`);
    } else if (parsed.protocol === 'http:' && !insecure) {
      problems.push(`IMAGE_REGISTRY_URL is plain http ("${url}"): set IMAGE_REGISTRY_INSECURE=true to allow it, or use https`);
    } else registryUrl = parsed;
  }

  const username = value('IMAGE_REGISTRY_USERNAME');
  const password = env.IMAGE_REGISTRY_PASSWORD || undefined;
  if (backend === 'kaniko') {
    for (const [name, set] of [['IMAGE_REGISTRY_USERNAME', username], ['IMAGE_REGISTRY_PASSWORD', password]] as const) {
      if (set !== undefined) problems.push(`${name} is set but IMAGE_BACKEND is kaniko: the build pod's registry credentials come from the Secret KANIKO_REGISTRY_SECRET names`);
    }
  } else if ((username === undefined) !== (password === undefined)) problems.push('IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD go together: set both or neither');

  const baseValue = value('IMAGE_BASE');
  let base: { repo: string; reference: string } | undefined;
  if (!baseValue) problems.push(`IMAGE_BASE is required with IMAGE_BACKEND=${backend} (the runner base image in that registry, as repo:tag or repo@sha256:...)`);
  else {
    base = parseImageReference(baseValue);
    if (!base) problems.push(`IMAGE_BASE must be repo:tag or repo@sha256:<64 hex> (a repository of IMAGE_REGISTRY_URL, without its host), not "${baseValue}"`);
  }

  if (backend === 'kaniko') {
    const kaniko = parseKanikoSettings(env, artifactStore);
    problems.push(...kaniko.problems);
    if (problems.length > 0) throw new Error(problems.join('\n  - '));
    // Plain http is the only thing IMAGE_REGISTRY_INSECURE allows (as for direct): kaniko's --insecure flags.
    return { backend: 'kaniko', registry: { host: registryUrl!.host, insecure: registryUrl!.protocol === 'http:' }, base: base!, ...kaniko.settings! };
  }
  if (problems.length > 0) throw new Error(problems.join('\n  - '));
  return { backend: 'direct', registry: { url: registryUrl!.origin, ...(username !== undefined ? { username, password } : {}), insecure }, base: base! };
}

/** `repo:tag` or `repo@sha256:...`; undefined if it is neither. */
export function parseImageReference(reference: string): { repo: string; reference: string } | undefined {
  const at = reference.indexOf('@');
  if (at >= 0) {
    const repo = reference.slice(0, at);
    const digest = reference.slice(at + 1);
    return REPOSITORY.test(repo) && DIGEST.test(digest) ? { repo, reference: digest } : undefined;
  }
  const colon = reference.lastIndexOf(':');
  if (colon < 0 || reference.indexOf('/', colon) >= 0) return undefined;
  const repo = reference.slice(0, colon);
  const tag = reference.slice(colon + 1);
  return REPOSITORY.test(repo) && TAG.test(tag) ? { repo, reference: tag } : undefined;
}
