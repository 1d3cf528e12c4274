import os from 'node:os';
import { parseArtifactStoreConfig, type ArtifactStoreConfig } from '@kublambda/artifact-store';
import { EnvReader, type Env } from '@kublambda/config';

export interface ApiControllerConfig {
  redisUrl: string;
  artifactStore: ArtifactStoreConfig;
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
}

export function parseApiControllerConfig(env: Env): ApiControllerConfig {
  const read = new EnvReader(env);
  const config = {
    redisUrl: read.string('REDIS_URL'),
    artifactStore: read.nested(parseArtifactStoreConfig)!,
    identity: read.string('POD_NAME', `${os.hostname()}-${process.pid}`),
    leaseNamespace: read.string('LEADER_ELECTION_NAMESPACE', read.string('POD_NAMESPACE', 'kublambda-system')),
    leaseName: read.string('LEADER_ELECTION_LEASE', 'kublambda-api-controller'),
    leaseDurationMs: read.integer('LEASE_DURATION_MS', 15_000, { min: 1_000, max: 300_000 }),
    renewDeadlineMs: read.integer('RENEW_DEADLINE_MS', 10_000, { min: 500, max: 300_000 }),
    retryPeriodMs: read.integer('RETRY_PERIOD_MS', 2_000, { min: 100, max: 60_000 }),
    reconcileConcurrency: read.integer('RECONCILE_CONCURRENCY', 8, { min: 1, max: 256 }),
    relistIntervalMs: read.integer('RELIST_INTERVAL_MS', 600_000, { min: 1_000, max: 86_400_000 }),
    watchNamespace: read.string('WATCH_NAMESPACE', '') || undefined,
  };
  read.finish('api-controller');
  return config;
}
