// Image jobs end to end: the builder as a local process (its own restricted Redis user), a real
// Redis, a real registry (Debian's docker-registry behind htpasswd), a file:// artifact store.
// The builder reaches the registry through a forwarding proxy in this process, which counts
// blob uploads and mounts and can hold the builder's requests mid-build. The base image holds
// this machine's Node only: whether the image runs is tested in libs/oci-image.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createArtifactStore, parseArtifactStoreConfig, type ArtifactStore } from '@kublambda/artifact-store';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, IMAGE_JOB_NAME, imageJobId, type ImageJobData, type ImageJobResult, type LambdaRef } from '@kublambda/build-queue';
import { freePort, startPlatformService, startRedis, startRegistry, waitUntil, type ManagedProcess, type OciRegistry, type RedisServer } from '@kublambda/dev-servers';
import { collectBaseImageFiles, createBaseImage, pushBaseImage, readImageLayer, RegistryClient, type ImageConfigJson, type ImageManifestJson } from '@kublambda/oci-image';
import { blobTraffic, startRegistryProxy, type RegistryProxy } from './registry-proxy.testing.ts';

const TIMEOUT = 180_000;
const BASE_REPO = 'kublambda/runner-base';
const BASE_TAG = 'test';
// As api-controller's bullmq-builds.ts requests builds.
const JOB_OPTIONS = { attempts: 5, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: false, removeOnFail: false };

let registry: OciRegistry;
let direct: RegistryClient;
let proxy: RegistryProxy;
let dir: string;
let assets: ArtifactStore;

/** What one test starts: its own Redis (the queue name is fixed) and builder; stopped after the test. */
interface Stack {
  redis: RedisServer;
  builder: ManagedProcess;
  queue: Queue<ImageJobData, ImageJobResult>;
  connection: Redis;
  adminPort: number;
}
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  registry = await startRegistry();
  direct = new RegistryClient({ url: registry.url, username: registry.username, password: registry.password, insecure: true });
  proxy = await startRegistryProxy(registry.url);
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-image-build-'));
  assets = await createArtifactStore(parseArtifactStoreConfig({ ARTIFACT_STORE_URL: `file://${dir}/assets` }));
  await pushBaseImage(direct, { repo: BASE_REPO, tag: BASE_TAG }, createBaseImage(await collectBaseImageFiles()));
}, TIMEOUT);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

function builderEnv(redis: RedisServer, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redis.urlFor('builder'),
    ARTIFACT_STORE_URL: `file://${dir}/assets`,
    BUILDER_CACHE_DIR: path.join(dir, 'cache'),
    BUILD_LOCK_DURATION_MS: '3000',
    BUILD_STALLED_INTERVAL_MS: '1000',
    IMAGE_BACKEND: 'direct',
    IMAGE_REGISTRY_URL: proxy.url,
    IMAGE_REGISTRY_INSECURE: 'true',
    IMAGE_REGISTRY_USERNAME: registry.username,
    IMAGE_REGISTRY_PASSWORD: registry.password,
    IMAGE_BASE: `${BASE_REPO}:${BASE_TAG}`,
    ...overrides,
  };
}

async function startStack(overrides: Record<string, string> = {}, redisOptions: { appendOnly?: boolean } = {}): Promise<Stack> {
  const redis = await startRedis(redisOptions);
  cleanups.push(() => redis.stop());
  const adminPort = await freePort();
  const builder = await startPlatformService('builder', builderEnv(redis, { ADMIN_PORT: String(adminPort), ...overrides }), { logDir: await mkdtemp(path.join(dir, 'logs-')) });
  cleanups.push(() => builder.stop());
  // Requests builds as api-controller does; the admin user so the test may inspect everything.
  const connection = new Redis(redis.adminUrl, { maxRetriesPerRequest: null });
  const queue = new Queue<ImageJobData, ImageJobResult>(BUILD_QUEUE, { connection, prefix: BUILD_QUEUE_PREFIX });
  queue.on('error', () => {});
  cleanups.push(async () => {
    await queue.close();
    connection.disconnect();
  });
  return { redis, builder, queue, connection, adminPort };
}

const lambda = (name: string): LambdaRef => ({ namespace: 'shop', name });

/** A fresh asset in the store, and an image job for it into a fresh repository. */
async function imageJob(name: string, overrides: Partial<ImageJobData> = {}): Promise<ImageJobData> {
  const source = Buffer.from(`export default async () => new Response(${JSON.stringify(`hello from ${name} ${randomBytes(4).toString('hex')}`)});\n`);
  const artifact = await assets.put(source);
  const ref = lambda(name);
  return {
    lambda: ref,
    artifact,
    repository: `lambdas/${ref.namespace}-${ref.name}-${randomBytes(3).toString('hex')}`,
    tag: artifact.digest.slice('sha256:'.length),
    settings: { namespace: ref.namespace, name: ref.name, runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 4, cpuMillis: 1000, network: 'outbound', stateTables: [] },
    mountFrom: [],
    ...overrides,
  };
}

async function enqueue(stack: Stack, data: ImageJobData): Promise<string> {
  const jobId = imageJobId(data.lambda, data.artifact.digest, data.repository);
  await stack.queue.add(IMAGE_JOB_NAME, data, { ...JOB_OPTIONS, jobId });
  return jobId;
}

async function resultOf(stack: Stack, jobId: string, timeoutMs = 90_000): Promise<ImageJobResult> {
  let state = '';
  return waitUntil(
    `image job ${jobId} to complete`,
    async () => {
      // The state first, then the job: a job read before it completed holds no return value yet.
      const current = await stack.queue.getJobState(jobId).catch(() => 'unknown');
      const job = await Job.fromId<ImageJobData, ImageJobResult>(stack.queue, jobId).catch(() => undefined);
      state = job ? `${current} after ${job.attemptsMade} attempts${job.failedReason ? `: ${job.failedReason}` : ''}` : 'no job';
      return current === 'completed' ? (job?.returnvalue ?? undefined) : undefined;
    },
    { timeoutMs, intervalMs: 200, describe: () => state },
  );
}

/** The pushed image read back from the registry directly (not through the proxy): manifest, config, and its last layer's files. */
async function readBack(repository: string, digest: string) {
  const manifest = await direct.getManifest(repository, digest);
  const parsed = JSON.parse(manifest.bytes.toString('utf8')) as ImageManifestJson;
  const config = JSON.parse((await direct.getBlob(repository, parsed.config.digest)).toString('utf8')) as ImageConfigJson;
  const last = parsed.layers.at(-1)!;
  const entries = readImageLayer(await direct.getBlob(repository, last.digest));
  return { manifest, parsed, config, entries };
}

async function metricsText(stack: Stack): Promise<string> {
  return (await fetch(`http://127.0.0.1:${stack.adminPort}/metrics`)).text();
}

describe('image jobs (IMAGE_BACKEND=direct)', () => {
  it(
    'pushes base + lambda.json + the asset; a second repository with mountFrom uploads no blob again',
    async () => {
      const stack = await startStack();
      const first = await imageJob('hello');
      const firstResult = await resultOf(stack, await enqueue(stack, first));
      if (firstResult.outcome !== 'pushed') throw new Error(`not pushed: ${firstResult.message}`);
      expect(firstResult.image).toBe(`${proxy.host}/${first.repository}@${firstResult.digest}`);

      const { manifest, parsed, config, entries } = await readBack(first.repository, firstResult.digest);
      expect(manifest.digest).toBe(firstResult.digest);
      expect(firstResult.size).toBe(manifest.bytes.length);
      expect((await direct.headManifest(first.repository, first.tag))?.digest).toBe(firstResult.digest);
      // The base's layer, then the lambda's; the base's entrypoint kept.
      const base = await direct.getManifest(BASE_REPO, BASE_TAG);
      expect(parsed.layers.slice(0, -1).map((layer) => layer.digest)).toEqual((JSON.parse(base.bytes.toString('utf8')) as ImageManifestJson).layers.map((layer) => layer.digest));
      expect(config.config?.Entrypoint).toEqual(['/usr/local/bin/node']);
      const files = Object.fromEntries(entries.filter((entry) => entry.typeFlag === '0' || entry.typeFlag === '\0').map((entry) => [entry.path, entry]));
      expect(Object.keys(files).sort()).toEqual(['lambda/lambda.json', 'lambda/lambda.mjs']);
      expect(JSON.parse(files['lambda/lambda.json']!.bytes.toString('utf8'))).toEqual({ ...first.settings, artifact: first.artifact });
      expect(files['lambda/lambda.mjs']!.bytes).toEqual(Buffer.from(await assets.get(first.artifact.digest)));
      expect([files['lambda/lambda.json']!.mode, files['lambda/lambda.mjs']!.mode]).toEqual([0o644, 0o644]);
      // The base layer was mounted from the base repository; the config and the new layer uploaded.
      expect(blobTraffic(proxy.requests, first.repository)).toEqual({ uploadSessions: 2, mounted: 1, mountRefused: 0, uploadPuts: 2 });

      // The same image for a second repository, told where its blobs already are.
      const second: ImageJobData = { ...first, repository: `${first.repository}-copy`, mountFrom: [first.repository] };
      const secondResult = await resultOf(stack, await enqueue(stack, second));
      expect(secondResult).toEqual({ outcome: 'pushed', image: `${proxy.host}/${second.repository}@${firstResult.digest}`, digest: firstResult.digest, size: firstResult.size });
      expect(blobTraffic(proxy.requests, second.repository)).toEqual({ uploadSessions: 0, mounted: 3, mountRefused: 0, uploadPuts: 0 });
      expect((await direct.headManifest(second.repository, second.tag))?.digest).toBe(firstResult.digest);

      const metrics = await metricsText(stack);
      expect(metrics).toContain('kublambda_builder_builds_total{kind="image",result="succeeded"} 2');
      expect(metrics).toContain('kublambda_builder_build_duration_seconds_count{kind="image"} 2');
    },
    TIMEOUT,
  );

  it(
    'loses no build when Redis restarts in the middle of one',
    async () => {
      const stack = await startStack({}, { appendOnly: true });
      const data = await imageJob('restart');
      const release = proxy.hold();
      let jobId: string;
      try {
        jobId = await enqueue(stack, data);
        // The builder has taken the job and is waiting on the registry.
        await waitUntil('the build to reach the registry', () => proxy.held > 0, { timeoutMs: 60_000 });
        expect(await stack.queue.getJobState(jobId)).toBe('active');
        await stack.redis.restart();
      } finally {
        release();
      }
      const result = await resultOf(stack, jobId);
      if (result.outcome !== 'pushed') throw new Error(`not pushed: ${result.message}`);
      expect((await direct.headManifest(data.repository, data.tag))?.digest).toBe(result.digest);
    },
    TIMEOUT,
  );

  it(
    'finishes a build on another builder when the one building it is killed',
    async () => {
      const stack = await startStack();
      const data = await imageJob('takeover');
      const release = proxy.hold();
      let jobId: string;
      let second: ManagedProcess;
      try {
        jobId = await enqueue(stack, data);
        await waitUntil('the build to reach the registry', () => proxy.held > 0, { timeoutMs: 60_000 });
        expect(await stack.queue.getJobState(jobId)).toBe('active');
        // As a crash would: no lock released, no job moved back; only the lock's expiry tells.
        await stack.builder.kill();
        second = await startPlatformService('builder', builderEnv(stack.redis), { logDir: await mkdtemp(path.join(dir, 'logs-')), name: 'builder-2' });
        cleanups.push(() => second.stop());
      } finally {
        release();
      }
      const result = await resultOf(stack, jobId);
      if (result.outcome !== 'pushed') throw new Error(`not pushed: ${result.message}`);
      expect((await direct.headManifest(data.repository, data.tag))?.digest).toBe(result.digest);
      const job = await Job.fromId(stack.queue, jobId);
      // Taken over as a stalled job (counted in stalledCounter), not retried as a failure.
      expect(job?.stalledCounter).toBeGreaterThanOrEqual(1);
    },
    TIMEOUT,
  );

  it(
    'retries with the job\'s backoff when the registry answers 503, then pushes',
    async () => {
      const stack = await startStack();
      const data = await imageJob('unavailable');
      // The first attempt's first request (the base manifest) fails; the retry finds the registry well.
      proxy.failNext(1, 503);
      const jobId = await enqueue(stack, data);
      const result = await resultOf(stack, jobId);
      if (result.outcome !== 'pushed') throw new Error(`not pushed: ${result.message}`);
      expect((await Job.fromId(stack.queue, jobId))?.attemptsMade).toBe(2);
      const metrics = await metricsText(stack);
      expect(metrics).toContain('kublambda_builder_builds_total{kind="image",result="error"} 1');
      expect(metrics).toContain('kublambda_builder_builds_total{kind="image",result="succeeded"} 1');
    },
    TIMEOUT,
  );

  it(
    'fails the job, naming the registry and the 401, when the registry refuses the password',
    async () => {
      const stack = await startStack({ IMAGE_REGISTRY_PASSWORD: 'not-the-password' });
      const data = await imageJob('badpassword');
      const jobId = await enqueue(stack, data);
      const result = await resultOf(stack, jobId);
      expect(result.outcome).toBe('failed');
      const message = result.outcome === 'failed' ? result.message : '';
      expect(message).toContain(`registry ${proxy.host}`);
      expect(message).toContain('HTTP 401');
      // A result, not a retry: one attempt.
      expect((await Job.fromId(stack.queue, jobId))?.attemptsMade).toBe(1);
      expect(await metricsText(stack)).toContain('kublambda_builder_builds_total{kind="image",result="failed"} 1');
    },
    TIMEOUT,
  );

  it(
    'fails the job, naming the base image, when IMAGE_BASE is not in the registry',
    async () => {
      const stack = await startStack({ IMAGE_BASE: `${BASE_REPO}:missing` });
      const result = await resultOf(stack, await enqueue(stack, await imageJob('nobase')));
      expect(result).toEqual({ outcome: 'failed', message: expect.stringContaining(`the base image ${proxy.host}/${BASE_REPO}:missing (IMAGE_BASE) is not in the registry`) });
    },
    TIMEOUT,
  );
});

describe('image jobs (IMAGE_BACKEND=off)', () => {
  it(
    'fails each image job with a clear result',
    async () => {
      const stack = await startStack({
        IMAGE_BACKEND: 'off',
        IMAGE_REGISTRY_URL: '',
        IMAGE_REGISTRY_INSECURE: '',
        IMAGE_REGISTRY_USERNAME: '',
        IMAGE_REGISTRY_PASSWORD: '',
        IMAGE_BASE: '',
      });
      const result = await resultOf(stack, await enqueue(stack, await imageJob('off')));
      expect(result).toEqual({ outcome: 'failed', message: 'image builds are disabled in this builder (IMAGE_BACKEND=off)' });
    },
    TIMEOUT,
  );
});
