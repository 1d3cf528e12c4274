// IMAGE_BACKEND=kaniko against the real API server (the shared test control plane, in a
// namespace of this file's own), kube-controller-manager's Job controller, kwok and a real S3
// server (versitygw). The backend is called as a library (runImageJob with
// createKanikoImageBackend), the way the builder's worker calls it; the last test runs the
// builder process itself, taking the job from a real Redis. Pods never run here: kwok
// finishes each build pod, playing the container's result from the pod annotations
// kwok.kublambda.io/exit-code and kwok.kublambda.io/termination-message, which these tests put
// on the pod template through KANIKO_POD_ANNOTATIONS (the digest kaniko would have written to
// /dev/termination-log). What the registry would hold is not tested here: no image is pushed.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type * as Minio from 'minio';
import { createArtifactStore, createS3Client, parseArtifactStoreConfig, type ArtifactStore } from '@kublambda/artifact-store';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX, IMAGE_JOB_NAME, imageJobId, type ImageJobData, type ImageJobResult } from '@kublambda/build-queue';
import { createTestNamespace, startPlatformService, startRedis, startS3, testKubeConfig, waitUntil, type S3Server } from '@kublambda/dev-servers';
import { createLogger } from '@kublambda/logging';
import { readImageLayer } from '@kublambda/oci-image';
import { parseImageBackendConfig } from './config.ts';
import { runImageJob } from './image-build.ts';
import { createKanikoImageBackend } from './kaniko-backend.ts';
import type { KanikoImageBackendConfig } from './kaniko-config.ts';
import { desiredKanikoJob, kanikoContextKey, kanikoJobName } from './kaniko-job.ts';

const TIMEOUT = 120_000;
const BUCKET = 'lambdas';
const REGISTRY = 'registry.kublambda-system:5000';
const EXIT_CODE = 'kwok.kublambda.io/exit-code';
const TERMINATION_MESSAGE = 'kwok.kublambda.io/termination-message';
const logger = createLogger('builder-test', 'error');

let kubeConfig: k8s.KubeConfig;
let namespace: { name: string; delete(): Promise<void> };
let batch: k8s.BatchV1Api;
let s3: S3Server;
let s3Env: Record<string, string>;
let assets: ArtifactStore;
let workRoot: string;
/** Context objects as they were when the backend deleted them, by key. */
const removedContexts = new Map<string, Buffer>();

beforeAll(async () => {
  kubeConfig = testKubeConfig();
  batch = kubeConfig.makeApiClient(k8s.BatchV1Api);
  namespace = await createTestNamespace(kubeConfig, 'kaniko');
  s3 = await startS3({ bucket: BUCKET });
  s3Env = { ARTIFACT_STORE_URL: `s3://${BUCKET}/assets`, S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey };
  assets = await createArtifactStore(parseArtifactStoreConfig(s3Env));
  workRoot = await mkdtemp(path.join(os.tmpdir(), 'kublambda-kaniko-'));
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  // The Secrets the Job names, as a platform admin would create them.
  await core.createNamespacedSecret({
    namespace: namespace.name,
    body: { metadata: { name: 'kaniko-registry' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [REGISTRY]: { auth: Buffer.from('builder:pw').toString('base64') } } }) } },
  });
  await core.createNamespacedSecret({ namespace: namespace.name, body: { metadata: { name: 'kaniko-s3' }, stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey } } });
  // The Job controller's pods wait for the namespace's default ServiceAccount.
  await waitUntil('the default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: namespace.name }).catch(() => undefined), { timeoutMs: 60_000 });
}, TIMEOUT);

afterAll(async () => {
  await namespace?.delete();
  await s3?.stop();
  if (workRoot) await rm(workRoot, { recursive: true, force: true });
}, 60_000);

/** The builder's environment for the kaniko backend, the artifact store's included. */
function kanikoEnv(podAnnotations: Record<string, string>): Record<string, string> {
  return {
    ...s3Env,
    IMAGE_BACKEND: 'kaniko',
    IMAGE_REGISTRY_URL: `http://${REGISTRY}`,
    IMAGE_REGISTRY_INSECURE: 'true',
    IMAGE_BASE: 'kublambda/runner-base:v1',
    KANIKO_NAMESPACE: namespace.name,
    KANIKO_REGISTRY_SECRET: 'kaniko-registry',
    KANIKO_S3_SECRET: 'kaniko-s3',
    KANIKO_S3_ENDPOINT: 'http://s3.kublambda-system:9000',
    KANIKO_CPU_REQUEST: '250m',
    KANIKO_MEMORY_REQUEST: '256Mi',
    KANIKO_CPU_LIMIT: '1',
    KANIKO_MEMORY_LIMIT: '1Gi',
    KANIKO_DEADLINE_SECONDS: '600',
    KANIKO_TTL_SECONDS: '300',
    KANIKO_POD_ANNOTATIONS: JSON.stringify(podAnnotations),
  };
}

/** The builder's configuration, as parsed from its environment. */
function kanikoConfig(podAnnotations: Record<string, string>): KanikoImageBackendConfig {
  const config = parseImageBackendConfig(kanikoEnv(podAnnotations), parseArtifactStoreConfig(s3Env));
  if (config.backend !== 'kaniko') throw new Error('not kaniko');
  return config;
}

/** The S3 client, recording each context object's bytes as the backend deletes it. */
function recordingS3(client: Minio.Client): Minio.Client {
  return new Proxy(client, {
    get(target, property) {
      if (property === 'removeObject') {
        return async (bucket: string, key: string) => {
          // A Job these tests left themselves has no context in S3.
          const bytes = await target.getObject(bucket, key).then(buffer, () => undefined);
          if (bytes) removedContexts.set(key, bytes);
          return target.removeObject(bucket, key);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function backendWith(podAnnotations: Record<string, string>) {
  const config = kanikoConfig(podAnnotations);
  const s3Config = parseArtifactStoreConfig(s3Env);
  if (s3Config.kind !== 's3') throw new Error('not s3');
  return { config, backend: createKanikoImageBackend({ config, kubeConfig, s3: recordingS3(createS3Client(s3Config)), workRoot, pollIntervalMs: 100 }) };
}

async function imageJob(name: string): Promise<{ data: ImageJobData; jobName: string }> {
  const artifact = await assets.put(Buffer.from(`export default async () => new Response(${JSON.stringify(`${name} ${randomBytes(4).toString('hex')}`)});\n`));
  const lambda = { namespace: 'shop', name };
  const data: ImageJobData = {
    lambda,
    artifact,
    repository: `kublambda/shop-${name}`,
    tag: artifact.digest.slice('sha256:'.length),
    settings: { namespace: 'shop', name, runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 4, cpuMillis: 1000, network: 'outbound', stateTables: [] },
    mountFrom: [],
  };
  return { data, jobName: kanikoJobName(imageJobId(lambda, artifact.digest, data.repository), lambda) };
}

/** Every version of the Job the API server stored while the function ran, from a watch. */
async function watchingJob<T>(jobName: string, run: () => Promise<T>): Promise<{ result: T; seen: Array<{ type: string; job: k8s.V1Job }> }> {
  const seen: Array<{ type: string; job: k8s.V1Job }> = [];
  const watch = await new k8s.Watch(kubeConfig).watch(`/apis/batch/v1/namespaces/${namespace.name}/jobs`, { fieldSelector: `metadata.name=${jobName}` }, (type, job: k8s.V1Job) => seen.push({ type, job }), () => {});
  try {
    return { result: await run(), seen };
  } finally {
    watch.abort();
  }
}

const jobGone = (name: string) =>
  waitUntil(`the Job ${name} to be deleted`, async () => (await batch.readNamespacedJob({ name, namespace: namespace.name }).then(() => false, (error: { code?: number }) => error.code === 404)) || undefined, { timeoutMs: 30_000 });

async function contextGone(key: string): Promise<boolean> {
  return s3.client().statObject(BUCKET, key).then(() => false, (error: { code?: string }) => error.code === 'NotFound');
}

const digestOf = (byte: string) => `sha256:${byte.repeat(64)}`;

describe('the kaniko image backend', () => {
  it(
    'creates the Job the API server accepts, reads the pushed digest from the termination message, and cleans up',
    async () => {
      const { data, jobName } = await imageJob('hello');
      const { backend } = backendWith({ [TERMINATION_MESSAGE]: digestOf('d'), 'sidecar.istio.io/inject': 'false' });
      const started = Date.now();
      const { result, seen } = await watchingJob(jobName, () => runImageJob(data, { assets, backend, logger }));
      const ms = Date.now() - started;
      process.stdout.write(`kaniko backend with kwok (Job looked at every 100 ms): job start to result ${ms} ms\n`);

      expect(result).toEqual({ outcome: 'pushed', image: `${REGISTRY}/kublambda/shop-hello@${digestOf('d')}`, digest: digestOf('d') });
      // The Job as the API server stored it (defaults filled in).
      const stored = seen.find((event) => event.type === 'ADDED')!.job;
      const key = `kaniko-contexts/${jobName}.tar.gz`;
      expect(stored.metadata?.labels).toMatchObject({ 'kublambda.io/lambda-namespace': 'shop', 'kublambda.io/lambda-name': 'hello', 'app.kubernetes.io/component': 'kaniko-build' });
      expect(stored.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 300 });
      const pod = stored.spec!.template;
      expect(pod.metadata?.annotations).toEqual({ [TERMINATION_MESSAGE]: digestOf('d'), 'sidecar.istio.io/inject': 'false' });
      expect(pod.metadata?.labels).toMatchObject({ 'kublambda.io/lambda-namespace': 'shop', 'kublambda.io/lambda-name': 'hello' });
      expect(pod.spec).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false });
      const container = pod.spec!.containers[0]!;
      expect(container.image).toBe('ghcr.io/osscontainertools/kaniko:v1.28.3');
      expect(container.args).toEqual([
        `--context=s3://${BUCKET}/${key}`,
        '--dockerfile=Dockerfile',
        `--destination=${REGISTRY}/kublambda/shop-hello:${data.tag}`,
        '--digest-file=/dev/termination-log',
        '--insecure',
        '--insecure-pull',
      ]);
      expect(container.env).toEqual([
        { name: 'S3_ENDPOINT', value: 'http://s3.kublambda-system:9000' },
        { name: 'S3_FORCE_PATH_STYLE', value: 'true' },
        { name: 'AWS_REGION', value: 'us-east-1' },
        { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'kaniko-s3', key: 'AWS_ACCESS_KEY_ID' } } },
        { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'kaniko-s3', key: 'AWS_SECRET_ACCESS_KEY' } } },
      ]);
      expect(container.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } });
      expect(container).toMatchObject({ terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'FallbackToLogsOnError' });
      expect(container.volumeMounts).toEqual([{ name: 'registry-credentials', mountPath: '/kaniko/.docker', readOnly: true }]);
      expect(pod.spec!.volumes).toEqual([{ name: 'registry-credentials', secret: { secretName: 'kaniko-registry', items: [{ key: '.dockerconfigjson', path: 'config.json' }], defaultMode: 0o644 } }]);
      // The Job ran to Complete (kwok finished its pod) before the backend deleted it.
      expect(seen.some(({ job }) => job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'))).toBe(true);

      // The context was in S3, with the Dockerfile and the files, until the build was over.
      const entries = readImageLayer(removedContexts.get(key)!);
      const files = Object.fromEntries(entries.filter((entry) => entry.typeFlag === '0').map((entry) => [entry.path, entry.bytes.toString('utf8')]));
      expect(files['Dockerfile']).toBe(`FROM ${REGISTRY}/kublambda/runner-base:v1\nCOPY lambda/lambda.json /lambda/lambda.json\nCOPY lambda/lambda.mjs /lambda/lambda.mjs\n`);
      expect(files['lambda/lambda.mjs']).toBe(Buffer.from(await assets.get(data.artifact.digest)).toString('utf8'));
      expect(JSON.parse(files['lambda/lambda.json']!)).toEqual({ ...data.settings, artifact: data.artifact });
      expect(await contextGone(key)).toBe(true);
      await jobGone(jobName);
    },
    TIMEOUT,
  );

  it(
    'reports a failed build with what kaniko said, and cleans up',
    async () => {
      const { data, jobName } = await imageJob('broken');
      const said = 'error building image: GET http://registry.kublambda-system:5000/v2/kublambda/runner-base/manifests/v1: MANIFEST_UNKNOWN';
      const { backend } = backendWith({ [EXIT_CODE]: '1', [TERMINATION_MESSAGE]: said });
      const result = await runImageJob(data, { assets, backend, logger });
      expect(result.outcome).toBe('failed');
      const message = (result as Extract<ImageJobResult, { outcome: 'failed' }>).message;
      expect(message).toContain(`building image ${REGISTRY}/kublambda/shop-broken:${data.tag} for shop/broken: the Kaniko Job ${namespace.name}/${jobName} failed:`);
      expect(message).toContain('exit code 1 (Error)');
      expect(message).toContain(`kaniko said: ${said}`);
      expect(await contextGone(kanikoContextKey({ context: { bucket: BUCKET, prefix: 'kaniko-contexts/', endpoint: '', region: '' } }, jobName))).toBe(true);
      await jobGone(jobName);
    },
    TIMEOUT,
  );

  it(
    'adopts the Job a killed builder left: finished, running, or failed in an earlier attempt',
    async () => {
      const { config: left } = backendWith({ [TERMINATION_MESSAGE]: digestOf('1') });
      // This attempt's pods would say 2: a result of 1 means the left Job was adopted.
      const { backend } = backendWith({ [TERMINATION_MESSAGE]: digestOf('2') });
      const leave = async (jobName: string, data: ImageJobData, podAnnotations: Record<string, string>, suspend = false) => {
        const job = desiredKanikoJob({ ...left, podAnnotations }, { jobName, imageJobId: imageJobId(data.lambda, data.artifact.digest, data.repository), lambda: data.lambda, target: `${data.repository}:${data.tag}` });
        job.spec!.suspend = suspend;
        return batch.createNamespacedJob({ namespace: namespace.name, body: job });
      };
      const finished = (jobName: string, type: 'Complete' | 'Failed') =>
        waitUntil(`the Job ${jobName} to be ${type}`, async () => (await batch.readNamespacedJob({ name: jobName, namespace: namespace.name })).status?.conditions?.some((c) => c.type === type && c.status === 'True'), { timeoutMs: 60_000 });

      // Finished: its result is read, nothing is built again.
      const complete = await imageJob('complete');
      const completeJob = await leave(complete.jobName, complete.data, { [TERMINATION_MESSAGE]: digestOf('1') });
      await finished(complete.jobName, 'Complete');
      const adopted = await watchingJob(complete.jobName, () => runImageJob(complete.data, { assets, backend, logger }));
      expect(adopted.result).toMatchObject({ outcome: 'pushed', digest: digestOf('1') });
      expect(adopted.seen.filter(({ type }) => type === 'ADDED').map(({ job }) => job.metadata?.uid)).toEqual([completeJob.metadata?.uid]);
      await jobGone(complete.jobName);

      // Running: followed to its end.
      const running = await imageJob('running');
      await leave(running.jobName, running.data, { [TERMINATION_MESSAGE]: digestOf('1') }, true);
      const following = runImageJob(running.data, { assets, backend, logger });
      await batch.patchNamespacedJob({ name: running.jobName, namespace: namespace.name, body: { spec: { suspend: false } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
      expect(await following).toMatchObject({ outcome: 'pushed', digest: digestOf('1') });
      await jobGone(running.jobName);

      // Failed in an earlier attempt: deleted and built again.
      const failed = await imageJob('retried');
      const failedJob = await leave(failed.jobName, failed.data, { [EXIT_CODE]: '1', [TERMINATION_MESSAGE]: 'error pushing image: 503' });
      await finished(failed.jobName, 'Failed');
      const rebuilt = await watchingJob(failed.jobName, () => runImageJob(failed.data, { assets, backend, logger }));
      expect(rebuilt.result).toMatchObject({ outcome: 'pushed', digest: digestOf('2') });
      const uids = new Set(rebuilt.seen.map(({ job }) => job.metadata?.uid));
      expect(uids.has(failedJob.metadata?.uid)).toBe(true);
      expect(uids.size).toBe(2);
      await jobGone(failed.jobName);
    },
    TIMEOUT,
  );

  it(
    'in the builder process: an image job from the queue ends as pushed, the Job gone',
    async () => {
      const redis = await startRedis();
      const { data, jobName } = await imageJob('queued');
      const logDir = await mkdtemp(path.join(workRoot, 'logs-'));
      const builder = await startPlatformService(
        'builder',
        { ...kanikoEnv({ [TERMINATION_MESSAGE]: digestOf('e') }), REDIS_URL: redis.urlFor('builder'), BUILDER_CACHE_DIR: path.join(workRoot, 'cache'), KUBECONFIG: process.env.KUBECONFIG! },
        { logDir },
      );
      const connection = new Redis(redis.adminUrl, { maxRetriesPerRequest: null });
      const queue = new Queue<ImageJobData, ImageJobResult>(BUILD_QUEUE, { connection, prefix: BUILD_QUEUE_PREFIX });
      try {
        const jobId = imageJobId(data.lambda, data.artifact.digest, data.repository);
        const started = Date.now();
        await queue.add(IMAGE_JOB_NAME, data, { jobId, attempts: 5, backoff: { type: 'exponential', delay: 1_000 } });
        const result = await waitUntil(
          'the image job to complete',
          async () => {
            // The state first, then the job: a job read before it completed holds no return value yet.
            if ((await queue.getJobState(jobId)) !== 'completed') return undefined;
            return (await Job.fromId<ImageJobData, ImageJobResult>(queue, jobId))?.returnvalue ?? undefined;
          },
          { timeoutMs: 60_000, intervalMs: 100 },
        );
        process.stdout.write(`kaniko backend with kwok, builder process (Job looked at every second): enqueued to result ${Date.now() - started} ms\n`);
        expect(result).toEqual({ outcome: 'pushed', image: `${REGISTRY}/kublambda/shop-queued@${digestOf('e')}`, digest: digestOf('e') });
        await jobGone(jobName);
        expect(await contextGone(`kaniko-contexts/${jobName}.tar.gz`)).toBe(true);
      } finally {
        await queue.close();
        connection.disconnect();
        await builder.stop();
        await redis.stop();
      }
    },
    TIMEOUT,
  );
});
