// IMAGE_BACKEND=kaniko: each image is built by a batch/v1 Job running the Kaniko executor in the
// builder's namespace. The builder prepares the context (kaniko-context-script.ts, through
// execa), puts it into S3, creates the Job (or adopts the one a killed builder left), follows
// it to its end, reads the pushed digest from the pod's termination message, and cleans up.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import type * as Minio from 'minio';
import type { LayerFile } from '@kublambda/oci-image';
import type { ImageBackend, ImagePushRequest, PushedImage } from './image-build.ts';
import { PermanentImageError } from './image-build.ts';
import type { KanikoImageBackendConfig } from './kaniko-config.ts';
import { desiredKanikoJob, kanikoContextKey, kanikoJobEnd, kanikoJobName, KANIKO_CONTAINER, podToReadLogsOf, readKanikoJobState, type KanikoJobState } from './kaniko-job.ts';

// From source the script is kaniko-context-script.ts beside this file; the bundled builder
// (tools/build) ships it as kaniko-context-script.mjs beside its main.mjs.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const CONTEXT_SCRIPT = fileURLToPath(new URL(FROM_SOURCE ? './kaniko-context-script.ts' : './kaniko-context-script.mjs', import.meta.url));
const LOG_TAIL_LINES = 30;
/** How long past the Job's own deadline the builder waits for the Job controller to end it. */
const DEADLINE_GRACE_MS = 120_000;

export interface KanikoBackendDeps {
  config: KanikoImageBackendConfig;
  kubeConfig: k8s.KubeConfig;
  /** The artifact store's S3 server, as the builder reaches it. */
  s3: Minio.Client;
  /** Where the context is prepared before upload. */
  workRoot: string;
  /** How often a running Job is looked at. Default 1000 ms. */
  pollIntervalMs?: number;
}

export function createKanikoImageBackend(deps: KanikoBackendDeps): ImageBackend {
  const { config } = deps;
  const batch = deps.kubeConfig.makeApiClient(k8s.BatchV1Api);
  const core = deps.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const namespace = config.namespace;
  const pollIntervalMs = deps.pollIntervalMs ?? 1_000;
  const baseImage = `${config.registry.host}/${config.base.repo}${config.base.reference.startsWith('sha256:') ? '@' : ':'}${config.base.reference}`;

  const readJob = (name: string) => batch.readNamespacedJob({ name, namespace }).catch(unlessNotFound);
  const podsOf = async (job: k8s.V1Job) =>
    (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata!.uid}` })).items;
  const deleteJob = (name: string) => batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }).catch(unlessNotFound);
  const deleteContext = (key: string) => deps.s3.removeObject(config.context.bucket, key);

  async function uploadContext(key: string, files: Record<string, LayerFile>): Promise<{ digest: string; size: number }> {
    await mkdir(deps.workRoot, { recursive: true });
    const dir = await mkdtemp(path.join(deps.workRoot, 'kaniko-'));
    try {
      const locals = await Promise.all(
        Object.entries(files).map(async ([imagePath, file], index) => {
          const local = path.join(dir, `file-${index}`);
          await writeFile(local, file.bytes);
          return `${imagePath}=${local}`;
        }),
      );
      const out = path.join(dir, 'context.tar.gz');
      const { stdout } = await execa(process.execPath, [CONTEXT_SCRIPT, '--base', baseImage, '--out', out, ...locals]);
      const context = JSON.parse(stdout) as { digest: string; size: number };
      await deps.s3.putObject(config.context.bucket, key, await readFile(out), context.size, { 'Content-Type': 'application/gzip' });
      return context;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async function createJob(job: k8s.V1Job): Promise<k8s.V1Job> {
    try {
      return await batch.createNamespacedJob({ namespace, body: job });
    } catch (error) {
      const code = statusOf(error);
      // Another attempt created it meanwhile: follow that one.
      if (code === 409) {
        const existing = await readJob(job.metadata!.name!);
        if (existing) return existing;
      }
      if (code === 400 || code === 403 || code === 422) {
        throw new PermanentImageError(`the API server refused the Kaniko Job ${namespace}/${job.metadata!.name} (HTTP ${code}): ${apiMessage(error)}`, { cause: error });
      }
      throw new Error(`creating the Kaniko Job ${namespace}/${job.metadata!.name}`, { cause: error });
    }
  }

  /** Waits for a Job of that name to be gone (a deleted Job lingers while its deletion runs). */
  async function waitJobGone(name: string, uid: string | undefined): Promise<void> {
    for (let start = Date.now(); Date.now() - start < 60_000; await sleep(pollIntervalMs)) {
      const job = await readJob(name);
      if (!job || job.metadata?.uid !== uid) return;
    }
    throw new Error(`the failed Kaniko Job ${namespace}/${name} was deleted but is still there after 60 s`);
  }

  /** Follows the Job until it ends; its state and its pods at that moment. */
  async function follow(name: string, uid: string | undefined): Promise<KanikoJobState> {
    let limit = Date.now() + config.activeDeadlineSeconds * 1_000 + DEADLINE_GRACE_MS;
    for (;;) {
      const job = await readJob(name);
      if (!job || job.metadata?.uid !== uid) throw new Error(`the Kaniko Job ${namespace}/${name} disappeared before it finished`);
      if (kanikoJobEnd(job)) return finalState(job);
      // The deadline runs from the Job's start (an adopted Job started before this attempt), as the Job controller counts it.
      const startTime = job.status?.startTime ? new Date(job.status.startTime).getTime() : undefined;
      if (startTime) limit = startTime + (job.spec?.activeDeadlineSeconds ?? config.activeDeadlineSeconds) * 1_000 + DEADLINE_GRACE_MS;
      if (Date.now() > limit) throw new Error(`the Kaniko Job ${namespace}/${name} is still running ${DEADLINE_GRACE_MS / 1000} s past its deadline`);
      await sleep(pollIntervalMs);
    }
  }

  async function finalState(job: k8s.V1Job): Promise<KanikoJobState> {
    const pods = await podsOf(job);
    const state = readKanikoJobState(job, pods);
    if (state.state !== 'failed') return state;
    // No termination message (the kubelet had no logs to fall back on either): try the log itself.
    const pod = podToReadLogsOf(pods);
    const tail = pod && (await core.readNamespacedPodLog({ name: pod, namespace, container: KANIKO_CONTAINER, tailLines: LOG_TAIL_LINES }).catch(() => undefined));
    return tail?.trim() ? { state: 'failed', message: `${state.message}; log: ${tail.trim()}` } : state;
  }

  return {
    host: config.registry.host,
    async push({ data, imageJobId, files, log }: ImagePushRequest): Promise<PushedImage> {
      const name = kanikoJobName(imageJobId, data.lambda);
      const key = kanikoContextKey(config, name);
      const where = `${namespace}/${name}`;
      let job = await readJob(name);
      if (job && kanikoJobEnd(job) === 'Failed') {
        // An earlier attempt's failure, not reported: this attempt builds afresh.
        log.info('deleting a failed Kaniko Job of an earlier attempt', { job: where });
        await deleteJob(name);
        await waitJobGone(name, job.metadata?.uid);
        job = undefined;
      }
      if (job) log.info('adopting Kaniko Job', { job: where, end: kanikoJobEnd(job) ?? 'running' });
      else {
        const context = await uploadContext(key, files);
        try {
          job = await createJob(desiredKanikoJob(config, { jobName: name, imageJobId, lambda: data.lambda, target: `${data.repository}:${data.tag}` }));
        } catch (error) {
          // No Job will read it; a retry uploads it again.
          await deleteContext(key).catch(() => {});
          throw error;
        }
        log.info('created Kaniko Job', { job: where, context: `s3://${config.context.bucket}/${key}`, contextDigest: context.digest, contextSize: context.size });
      }
      const started = Date.now();
      const state = await follow(name, job.metadata?.uid);
      // The Job and its context are of no more use, whatever the outcome; an error here is
      // retried, and the retry adopts the finished Job.
      await deleteJob(name);
      await deleteContext(key);
      if (state.state === 'succeeded') return { digest: state.digest, detail: { job: where, followedMs: Date.now() - started } };
      if (state.state === 'failed') {
        log.warn('Kaniko Job failed', { job: where, message: state.message });
        throw new PermanentImageError(`the Kaniko Job ${where} failed: ${state.message}`);
      }
      throw new Error(`the Kaniko Job ${where} ended in an unexpected state`);
    },
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof k8s.ApiException ? error.code : (error as { code?: number } | undefined)?.code;
}

function unlessNotFound(error: unknown): undefined {
  if (statusOf(error) === 404) return undefined;
  throw error;
}

/** The API server's Status message, or the error's own. */
function apiMessage(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return (error as Error).message;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
