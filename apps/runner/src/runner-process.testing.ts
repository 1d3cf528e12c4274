// The runner as a local process (no kubelet here) against real Redis and S3 servers, for the
// runner's integration tests. Lambdas are stored and routed the way api-controller does it.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createS3ArtifactStore } from '@kublambda/artifact-store';
import { freePort, startPlatformService, startRedis, startS3, waitUntil, type ManagedProcess, type RedisOptions, type RedisServer } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, parseEnvKeyRing, publishRoute, type EnvKeyRing, type RouteRecord } from '@kublambda/route-table';
import { testRoute } from './route.testing.ts';

export interface RunnerUnderTest {
  /** http://127.0.0.1:<port> */
  base: string;
  port: number;
  /** The runner's log and asset cache (`<dir>/cache`) live here. */
  dir: string;
  redis: RedisServer;
  /** A connection to the runner's Redis as its admin user (publishes routes, inspects anything). */
  client: Redis;
  process: ManagedProcess;
  /** The runner's ENV_ENCRYPTION_KEYS, for tests to encrypt env values as api-controller does. */
  envKeys: EnvKeyRing;
  /**
   * Stores the source as an asset and publishes its route (other fields default as in
   * testRoute); resolves once the runner has a new route (an update is the caller's to await).
   */
  publish(source: string, route: Partial<RouteRecord> & Pick<RouteRecord, 'namespace' | 'name' | 'pathPrefix'>): Promise<RouteRecord['artifact']>;
  /** Stops the runner and the servers and removes the directory; safe to call after a failed start. */
  stop(): Promise<void>;
}

/** Redis and S3 for runners, shared by any number of runner processes; routes published the way api-controller does it. */
export interface RunnerBackends {
  redis: RedisServer;
  /** A connection to Redis as its admin user (publishes routes, inspects anything). */
  client: Redis;
  /** ENV_ENCRYPTION_KEYS as the runners get it. */
  envKeysText: string;
  /** What a runner process needs to reach these servers. */
  runnerEnv(cacheDir: string): Record<string, string>;
  /** Stores the source as an asset and publishes its route (other fields default as in testRoute). */
  publishRoute(source: string, route: Partial<RouteRecord> & Pick<RouteRecord, 'namespace' | 'name' | 'pathPrefix'>): Promise<RouteRecord['artifact']>;
  /** Stops the servers; safe to call after a failed start. */
  stop(): Promise<void>;
}

export async function startRunnerBackends(options: { redis?: RedisOptions; envKeys?: string } = {}): Promise<RunnerBackends> {
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step();
  };
  try {
    const redis = await startRedis(options.redis);
    stops.push(() => redis.stop());
    const s3 = await startS3({ bucket: 'assets' });
    stops.push(() => s3.stop());
    const client = new Redis(redis.adminUrl, { maxRetriesPerRequest: 1 });
    // Tests that stop Redis on purpose see the failures in what they call.
    client.on('error', () => undefined);
    stops.push(() => client.disconnect());
    const store = createS3ArtifactStore({ client: s3.client(), bucket: 'assets' });
    const envKeysText = options.envKeys ?? generateEnvEncryptionKey('test');
    return {
      redis,
      client,
      envKeysText,
      runnerEnv: (cacheDir) => ({
        REDIS_URL: redis.urlFor('runner'), ARTIFACT_STORE_URL: 's3://assets/', S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey,
        ASSET_CACHE_DIR: cacheDir, ENV_ENCRYPTION_KEYS: envKeysText,
      }),
      publishRoute: async (source, route) => {
        const artifact = await store.put(Buffer.from(source));
        const key = `${route.namespace}/${route.name}`;
        await publishRoute(client, testRoute(route.name, route.pathPrefix, { key, artifact, ...route }));
        return artifact;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A runner process listening on host:port against the backends; its log and asset cache in dir. */
export function startRunnerProcess(backends: RunnerBackends, options: { host: string; port: number; dir: string; name?: string; env?: Record<string, string> }): Promise<ManagedProcess> {
  const name = options.name ?? 'runner';
  return startPlatformService('runner', { ...backends.runnerEnv(path.join(options.dir, `${name}-cache`)), HOST: options.host, PORT: String(options.port), ...options.env }, { logDir: options.dir, name });
}

export async function startRunnerUnderTest(options: { env?: Record<string, string>; redis?: RedisOptions } = {}): Promise<RunnerUnderTest> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runner-test-'));
  const stops: Array<() => Promise<void> | void> = [() => rm(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step();
  };
  try {
    const backends = await startRunnerBackends({ redis: options.redis, envKeys: options.env?.ENV_ENCRYPTION_KEYS });
    stops.push(() => backends.stop());
    const port = await freePort();
    const runner = await startPlatformService('runner', {
      ...backends.runnerEnv(path.join(dir, 'cache')), HOST: '127.0.0.1', PORT: String(port), ...options.env,
    }, { logDir: dir });
    stops.push(() => runner.stop());
    const base = `http://127.0.0.1:${port}`;
    const published = new Set<string>();
    return {
      base,
      port,
      dir,
      redis: backends.redis,
      client: backends.client,
      process: runner,
      envKeys: parseEnvKeyRing(backends.envKeysText),
      publish: async (source, route) => {
        const artifact = await backends.publishRoute(source, route);
        published.add(`${route.namespace}/${route.name}`);
        await waitUntil(`the runner to have route ${route.namespace}/${route.name}`, async () => ((await (await fetch(`${base}/readyz`)).json()) as { routes: number }).routes >= published.size, {
          intervalMs: 10,
          timeoutMs: 10_000,
        });
        return artifact;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
