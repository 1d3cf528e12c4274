import os from 'node:os';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, type Env } from '@kublambda/config';
import { parseEnvKeyRing, type EnvKeyRing } from '@kublambda/route-table';
import type { HttpExposureConfig } from './http-exposure.ts';

export interface ApiControllerConfig {
  redisUrl: string;
  artifactStore: ArtifactStoreConfig;
  /** Encrypts env values taken from Secrets in route records (and reads the previous ones). */
  envKeys: EnvKeyRing;
  /** This replica's name in the leader-election Lease and in Events. */
  identity: string;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  reconcileConcurrency: number;
  relistIntervalMs: number;
  /** Reconcile only lambdas in this namespace; all namespaces when unset. */
  watchNamespace?: string;
  http: HttpExposureConfig;
}

export function parseApiControllerConfig(env: Env): ApiControllerConfig {
  const read = new EnvReader(env);
  const config = {
    redisUrl: read.string('REDIS_URL'),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    envKeys: read.nested((env) => parseEnvKeyRing(env.ENV_ENCRYPTION_KEYS))!,
    identity: read.string('POD_NAME', `${os.hostname()}-${process.pid}`),
    leaseNamespace: read.string('LEADER_ELECTION_NAMESPACE', read.string('POD_NAMESPACE', 'kublambda-system')),
    leaseName: read.string('LEADER_ELECTION_LEASE', 'kublambda-api-controller'),
    leaseDurationMs: read.integer('LEASE_DURATION_MS', 15_000, { min: 1_000, max: 300_000 }),
    renewDeadlineMs: read.integer('RENEW_DEADLINE_MS', 10_000, { min: 500, max: 300_000 }),
    retryPeriodMs: read.integer('RETRY_PERIOD_MS', 2_000, { min: 100, max: 60_000 }),
    reconcileConcurrency: read.integer('RECONCILE_CONCURRENCY', 8, { min: 1, max: 256 }),
    relistIntervalMs: read.integer('RELIST_INTERVAL_MS', 600_000, { min: 1_000, max: 86_400_000 }),
    watchNamespace: read.string('WATCH_NAMESPACE', '') || undefined,
    http: {
      platformNamespace: read.string('PLATFORM_NAMESPACE', read.string('POD_NAMESPACE', 'kublambda-system')),
      clusterDomain: read.string('CLUSTER_DOMAIN', 'cluster.local'),
      ingressClassName: read.string('INGRESS_CLASS_NAME', ''),
      ingressAnnotations: read.nested(parseIngressAnnotations)!,
      externalBaseUrl: read.nested(parseExternalBaseUrl),
    },
  };
  read.finish('api-controller');
  return config;
}

function parseIngressAnnotations(env: Env): Record<string, string> {
  const raw = env.INGRESS_ANNOTATIONS?.trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`INGRESS_ANNOTATIONS must be a JSON object of strings: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((value) => typeof value === 'string')) {
    throw new Error(`INGRESS_ANNOTATIONS must be a JSON object of strings, for example {"nginx.ingress.kubernetes.io/proxy-body-size":"32m"}, not ${raw}`);
  }
  return parsed as Record<string, string>;
}

/** Where the ingress controller is reached from outside, without a path: lambda paths go after it. */
function parseExternalBaseUrl(env: Env): string | undefined {
  const raw = env.EXTERNAL_BASE_URL?.trim();
  if (!raw) return undefined;
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new Error(`EXTERNAL_BASE_URL must be an http:// or https:// URL with no path, query or credentials, for example http://lambdas.example.com, not "${raw}"`);
  }
  return url.origin;
}
