// The contract between api-controller (which requests builds) and builder (which runs them).
import type { StandaloneLambda } from '@kublambda/route-table';

export const BUILD_QUEUE = 'builds';
/**
 * BullMQ's key prefix, given explicitly so the Redis users' rules (libs/redis-acl) name the same
 * keys. The braces are a hash tag: on a Redis Cluster every key of the queue is in one slot, as
 * BullMQ's scripts need.
 */
export const BUILD_QUEUE_PREFIX = '{kublambda}';

/**
 * How api-controller adds build and image jobs: 5 attempts with exponential backoff from 1 s,
 * and finished jobs kept: api-controller removes each once its outcome is in the Lambda's status.
 */
export const BUILD_JOB_OPTIONS = { attempts: 5, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: false, removeOnFail: false } as const;

export interface LambdaRef {
  namespace: string;
  name: string;
}

export interface BuildJobData {
  lambda: LambdaRef;
  /** Digest of everything the asset is built from (see sourceDigest). */
  sourceDigest: string;
  runtime: 'nodejs';
  files: Record<string, string>;
  entrypoint: string;
  typeCheck: boolean;
}

/** Why a build failed because of the user's source; a permanent outcome, never retried. */
export type BuildFailureReason = 'CompileFailed' | 'DependencyInstallFailed' | 'NoDefaultExport' | 'InvalidSource';

export type BuildJobResult =
  | { outcome: 'built'; artifact: { digest: string; size: number }; warnings: string[] }
  | { outcome: 'failed'; reason: BuildFailureReason; message: string };

/**
 * One job per lambda and source: the same source requested twice is one job. BullMQ ids may
 * not contain ':', and namespaces and lambda names cannot contain '/'.
 */
export function buildJobId(lambda: LambdaRef, sourceDigest: string): string {
  return `${lambda.namespace}/${lambda.name}/${sourceDigest.replace(/^sha256:/, '')}`;
}

export function lambdaOfBuildJobId(jobId: string): LambdaRef | undefined {
  const [namespace, name, digest] = jobId.split('/');
  return namespace && name && digest ? { namespace, name } : undefined;
}

// Image builds follow an asset's build on the same queue: the asset on top of the runner base
// image, pushed to the platform's registry (the builder's backend: direct or kaniko).

/** The BullMQ job name of image builds; asset builds are named "build". */
export const IMAGE_JOB_NAME = 'image';

export interface ImageJobData {
  lambda: LambdaRef;
  /** The asset the image carries; the builder reads it from the artifact store. */
  artifact: { digest: string; size: number };
  /** Repository within the registry: <prefix>/<namespace>-<name>. */
  repository: string;
  /** The image's tag: the asset digest's hex. */
  tag: string;
  /** What lambda.json in the image says, besides the asset (libs/route-table standalone.ts). */
  settings: Omit<StandaloneLambda, 'artifact'>;
  /** Repositories that may already hold the image's blobs (another lambda built from the same source), for cross-repository mounts. */
  mountFrom: string[];
}

export type ImageJobResult =
  /** `image` is `<registry host>/<repository>@sha256:...`; `size` the manifest's, when the backend knows it (kaniko reports only the digest). */
  | { outcome: 'pushed'; image: string; digest: string; size?: number }
  | { outcome: 'failed'; message: string };

/**
 * One job per lambda, asset and repository: repeats collapse. Starts like buildJobId, so
 * lambdaOfBuildJobId and the per-lambda cleanup find it too.
 */
export function imageJobId(lambda: LambdaRef, assetDigest: string, repository: string): string {
  return `${lambda.namespace}/${lambda.name}/${assetDigest.replace(/^sha256:/, '')}/image/${repository.replaceAll('/', '.')}`;
}

export * from './build-record.ts';
export * from './queue-jobs.ts';
