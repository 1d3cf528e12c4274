// A slice of the platform for integration tests: a namespace of its own on the shared test
// control plane, real Redis and S3 servers, and api-controller and builder running from source
// as local processes (no kubelet runs here, so they cannot run as pods).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { connectRedis, everyMaster } from '@kublambda/redis-connection';
import YAML from 'yaml';
import {
  createTestNamespace,
  freePort,
  kubectl,
  startPlatformService,
  startRedis,
  startRedisCluster,
  startS3,
  testKubeConfig,
  type ManagedProcess,
  type RedisClusterServer,
  type RedisService,
  type S3Server,
  startNpmRegistry,
  waitUntil,
} from '@kublambda/dev-servers';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from '@kublambda/crd-types';
import { isNotFound } from '@kublambda/reconcile-runtime';
import { generateEnvEncryptionKey, loadRoutes, ROUTES_KEY, type RouteRecord } from '@kublambda/route-table';
import { createS3ArtifactStore, type ArtifactStore } from '@kublambda/artifact-store';

export const ASSET_BUCKET = 'assets';

export interface LambdaPlatform {
  namespace: string;
  kubeConfig: k8s.KubeConfig;
  /** A single redis-server, or a Redis Cluster when started with `redisCluster`. */
  redis: RedisService;
  /** The cluster itself (its nodes, to fail them), when started with `redisCluster`. */
  redisCluster?: RedisClusterServer;
  s3: S3Server;
  /** The asset store the platform uses, read through the same library. */
  assets: ArtifactStore;
  logDir: string;
  startController(name?: string, extraEnv?: Record<string, string>): Promise<ManagedProcess>;
  startBuilder(name?: string, extraEnv?: Record<string, string>): Promise<ManagedProcess>;
  /** A runner on a free loopback port, reading the platform's Redis and S3; returns its base URL. */
  startRunner(name?: string, extraEnv?: Record<string, string>): Promise<string>;
  /** The ENV_ENCRYPTION_KEYS api-controller and the runner get unless told otherwise (the builder never). */
  envEncryptionKeys: string;
  /** kubectl apply of a Lambda in the platform's namespace. */
  apply(name: string, spec: Record<string, unknown>): Promise<void>;
  /** One kubectl apply of many Lambdas. */
  applyAll(lambdas: Array<[name: string, spec: Record<string, unknown>]>): Promise<void>;
  get(name: string): Promise<Lambda | undefined>;
  remove(name: string): Promise<void>;
  /** Polls the Lambda until the check passes; fails with the last state seen. */
  waitFor(name: string, what: string, check: (lambda: Lambda | undefined) => boolean, timeoutMs?: number): Promise<Lambda | undefined>;
  /** apply, get, waitFor and remove for Lambdas in another namespace, for tests across namespaces. */
  lambdasIn(namespace: string): Pick<LambdaPlatform, 'apply' | 'get' | 'waitFor' | 'remove'>;
  /** Every object in the asset bucket, whatever its key. */
  assetKeys(): Promise<string[]>;
  redisKeys(): Promise<string[]>;
  routes(): Promise<RouteRecord[]>;
  /** The routes hash as Redis holds it (HGETALL): lambda key to the record's JSON. */
  rawRoutes(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export function condition(lambda: Lambda | undefined, type: string) {
  return lambda?.status?.conditions?.find((c) => c.type === type);
}

/** True once the controller has reported on the current generation and Ready is True. */
export function isReady(lambda: Lambda | undefined): boolean {
  return lambda?.status?.observedGeneration === lambda?.metadata.generation && condition(lambda, 'Ready')?.status === 'True';
}

export interface LambdaPlatformOptions {
  /** A three-master Redis Cluster with a replica per master instead of a single Redis. */
  redisCluster?: boolean;
}

export async function startLambdaPlatform(prefix: string, options: LambdaPlatformOptions = {}): Promise<LambdaPlatform> {
  const kubeConfig = testKubeConfig();
  const namespace = await createTestNamespace(kubeConfig, prefix);
  const redisCluster = options.redisCluster ? await startRedisCluster() : undefined;
  const redis: RedisService = redisCluster ?? (await startRedis());
  const s3 = await startS3({ bucket: ASSET_BUCKET });
  // Lambdas' npm dependencies come from a registry on loopback, never the public one.
  const npmRegistry = await startNpmRegistry();
  const logDir = await mkdtemp(path.join(os.tmpdir(), `kublambda-${prefix}-`));
  // Sees every key, so tests can check what the services left behind; the services get their own users.
  const redisClient = connectRedis(redis.adminUrl);
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const processes: ManagedProcess[] = [];
  const env: Record<string, string> = {
    KUBECONFIG: process.env.KUBECONFIG!,
    ARTIFACT_STORE_URL: `s3://${ASSET_BUCKET}/`,
    S3_ENDPOINT: s3.url,
    S3_ACCESS_KEY: s3.accessKey,
    S3_SECRET_KEY: s3.secretKey,
    S3_REGION: s3.region,
    WATCH_NAMESPACE: namespace.name,
    LEADER_ELECTION_NAMESPACE: namespace.name,
    // The runner Service goes here, not into a namespace other tests share.
    PLATFORM_NAMESPACE: namespace.name,
    LEASE_DURATION_MS: '3000',
    RENEW_DEADLINE_MS: '2000',
    RETRY_PERIOD_MS: '300',
    // Relists every second, so tests also show that a relist of settled lambdas changes nothing.
    RELIST_INTERVAL_MS: '1000',
    BUILD_LOCK_DURATION_MS: '3000',
    BUILD_STALLED_INTERVAL_MS: '1000',
    BUILDER_CACHE_DIR: path.join(logDir, 'builder-cache'),
  };
  const envEncryptionKeys = generateEnvEncryptionKey('test');
  let serial = 0;
  const applyAllIn = async (lambdaNamespace: string, lambdas: Array<[string, Record<string, unknown>]>) => {
    const manifests = lambdas.map(([name, spec]) => ({ apiVersion: `${LAMBDA_GROUP}/${LAMBDA_VERSION}`, kind: 'Lambda', metadata: { name, namespace: lambdaNamespace }, spec }));
    const result = await kubectl(['apply', '-f', '-'], { input: manifests.map((m) => YAML.stringify(m)).join('---\n') });
    if (result.exitCode !== 0) throw new Error(`kubectl apply ${lambdas.map(([name]) => name).join(', ')}: ${result.stderr}`);
  };
  const track = (started: ManagedProcess) => (processes.push(started), started);

  const getIn = async (lambdaNamespace: string, name: string) =>
    (await api
      .getNamespacedCustomObject({ group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace: lambdaNamespace, name })
      .catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      })) as Lambda | undefined;
  const lambdasIn = (lambdaNamespace: string): Pick<LambdaPlatform, 'apply' | 'get' | 'waitFor' | 'remove'> => ({
    apply: (name, spec) => applyAllIn(lambdaNamespace, [[name, spec]]),
    get: (name) => getIn(lambdaNamespace, name),
    remove: async (name) => {
      const result = await kubectl(['delete', 'lambda', name, '-n', lambdaNamespace, '--wait=false']);
      if (result.exitCode !== 0) throw new Error(`kubectl delete ${name}: ${result.stderr}`);
    },
    waitFor: async (name, what, check, timeoutMs = 60_000) => {
      let last: Lambda | undefined;
      const seen = await waitUntil(
        `${name} to be ${what}`,
        async () => {
          last = await getIn(lambdaNamespace, name);
          return check(last) && { lambda: last };
        },
        { timeoutMs, describe: () => JSON.stringify(last?.status ?? last ?? 'absent') },
      );
      return seen.lambda;
    },
  });
  const own = lambdasIn(namespace.name);
  const applyAll = (lambdas: Array<[string, Record<string, unknown>]>) => applyAllIn(namespace.name, lambdas);

  return {
    namespace: namespace.name,
    kubeConfig,
    redis,
    ...(redisCluster ? { redisCluster } : {}),
    s3,
    assets: createS3ArtifactStore({ client: s3.client(), bucket: ASSET_BUCKET }),
    logDir,
    envEncryptionKeys,
    startController: async (name = `api-controller-${++serial}`, extraEnv = {}) =>
      track(await startPlatformService('api-controller', { ...env, REDIS_URL: redis.urlFor('api-controller'), ENV_ENCRYPTION_KEYS: envEncryptionKeys, POD_NAME: name, ...extraEnv }, { logDir, name })),
    startBuilder: async (name = `builder-${++serial}`, extraEnv = {}) =>
      track(await startPlatformService('builder', { ...env, REDIS_URL: redis.urlFor('builder'), NPM_REGISTRY: npmRegistry.url, ...extraEnv }, { logDir, name })),
    startRunner: async (name = `runner-${++serial}`, extraEnv = {}) => {
      const port = await freePort();
      const { ARTIFACT_STORE_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION } = env;
      const runnerEnv = { REDIS_URL: redis.urlFor('runner'), ARTIFACT_STORE_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION } as Record<string, string>;
      const ownEnv = { HOST: '127.0.0.1', PORT: String(port), ASSET_CACHE_DIR: path.join(logDir, `${name}-cache`), ENV_ENCRYPTION_KEYS: envEncryptionKeys };
      track(await startPlatformService('runner', { ...runnerEnv, ...ownEnv, ...extraEnv }, { logDir, name }));
      return `http://127.0.0.1:${port}`;
    },
    ...own,
    applyAll,
    lambdasIn,
    assetKeys: async () => {
      const keys: string[] = [];
      for await (const item of s3.client().listObjectsV2(ASSET_BUCKET, '', true)) keys.push((item as { name: string }).name);
      return keys.sort();
    },
    // Every master's keys: a cluster spreads them.
    redisKeys: async () => (await Promise.all(everyMaster(redisClient).map((node) => node.keys('*')))).flat().sort(),
    routes: () => loadRoutes(redisClient),
    rawRoutes: () => redisClient.hgetall(ROUTES_KEY),
    stop: async () => {
      for (const started of processes.reverse()) await started.stop();
      redisClient.disconnect();
      await Promise.all([redis.stop(), s3.stop(), npmRegistry.stop(), namespace.delete()]);
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
