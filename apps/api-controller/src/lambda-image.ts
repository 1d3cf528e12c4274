// What a lambda's container image should be and what to do about it: pure decisions, tested
// with tables (lambda-image.test.ts); reconcile-lambda.ts does the I/O.
import type { Condition, Lambda, LambdaStatus } from '@kublambda/crd-types';
import { imageJobId, type ImageJobData, type ImageJobResult } from '@kublambda/build-queue';
import type { ConditionUpdate } from './conditions.ts';
import { desiredRoute } from './desired-route.ts';

export type ImageJobState =
  | { state: 'absent' }
  | { state: 'pending' }
  | { state: 'done'; result: ImageJobResult }
  | { state: 'error'; message: string };

/** The repository of a lambda's images: <prefix>/<namespace>-<name> (config.ts checks the length). */
export function imageRepository(prefix: string, namespace: string, name: string): string {
  return `${prefix}/${namespace}-${name}`;
}

export interface ImageReference {
  host: string;
  repository: string;
  digest: string;
}

/** `<host>/<repository>@sha256:<hex>`, as the builder reports and status.image holds; undefined for anything else. */
export function parseImageReference(reference: string): ImageReference | undefined {
  const match = /^([^/@]+)\/([^@]+)@(sha256:[a-f0-9]{64})$/.exec(reference);
  return match ? { host: match[1]!, repository: match[2]!, digest: match[3]! } : undefined;
}

/** The same image: same repository and manifest digest. The host is left out: the builder and api-controller may reach the registry by different names. */
export function sameImage(a: ImageReference, b: ImageReference): boolean {
  return a.repository === b.repository && a.digest === b.digest;
}

const keyOf = (lambda: Lambda) => `${lambda.metadata.namespace}/${lambda.metadata.name}`;

/**
 * Repositories of other lambdas whose pushed image carries the same asset: the image's layers
 * are there already, and the registry can mount them instead of taking the upload again.
 */
export function mountSources(key: string, artifactDigest: string, repository: string, lambdas: ReadonlyArray<Lambda>): string[] {
  const sources = new Set<string>();
  for (const other of lambdas) {
    const status = other.status;
    if (keyOf(other) === key || status?.artifact?.digest !== artifactDigest || !status.image) continue;
    // ImageReady=True means status.image was built from status.artifact (see decideImage).
    if (status.conditions?.find((c) => c.type === 'ImageReady')?.status !== 'True') continue;
    const reference = parseImageReference(status.image);
    if (reference && reference.repository !== repository) sources.add(reference.repository);
  }
  return [...sources].sort();
}

/** Whether a lambda other than `key` names this image in its status: such an image is never deleted. */
export function referencedByOther(image: ImageReference, key: string, lambdas: ReadonlyArray<Lambda>): boolean {
  return lambdas.some((other) => {
    if (keyOf(other) === key || !other.status?.image) return false;
    const theirs = parseImageReference(other.status.image);
    return theirs !== undefined && sameImage(theirs, image);
  });
}

/** The image job a lambda needs for its asset, with the settings its lambda.json carries. */
export function desiredImageJob(lambda: Lambda, artifact: { digest: string; size: number }, repository: string, mountFrom: string[]): { jobId: string; data: ImageJobData } {
  const ref = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  // The route's settings, so the standalone runner serves the lambda as the pool does; env is
  // given at run time, host and path belong to whoever routes to the container.
  const { key: _key, pathPrefix: _path, host: _host, env: _env, generation: _generation, artifact: _artifact, ...settings } = desiredRoute(lambda, artifact, []);
  const tag = artifact.digest.replace(/^sha256:/, '');
  return { jobId: imageJobId(ref, artifact.digest, repository), data: { lambda: ref, artifact: { digest: artifact.digest, size: artifact.size }, repository, tag, settings, mountFrom } };
}

export type ImageStep =
  /** Nothing to build from yet. */
  | { action: 'wait'; condition: ConditionUpdate }
  /** status.image is the image of status.artifact, or its build failed for good: nothing to do. */
  | { action: 'keep'; condition: ConditionUpdate }
  /** Look at (and maybe request) the image job for the asset. */
  | { action: 'job' };

/**
 * Whether the lambda's image is up to date, from its status alone. ImageReady=True (or False
 * ImageBuildFailed) describes status.artifact as the previous pass wrote it: the pass that
 * records a new asset sets ImageReady to Building in the same write, so an unchanged asset
 * with ImageReady=True means status.image holds it.
 */
export function decideImage(input: {
  /** status.artifact after this pass's build step. */
  artifact: LambdaStatus['artifact'];
  built: ConditionUpdate;
  repository: string;
  before: LambdaStatus;
}): ImageStep {
  const { artifact, built, repository, before } = input;
  if (!artifact) {
    return { action: 'wait', condition: { type: 'ImageReady', status: built.status === 'False' ? 'False' : 'Unknown', reason: 'NotBuilt', message: 'no asset has been built for this lambda yet' } };
  }
  const ready = before.conditions?.find((c: Condition) => c.type === 'ImageReady');
  const sameAsset = before.artifact?.digest === artifact.digest;
  if (!sameAsset || !ready) return { action: 'job' };
  const current = before.image ? parseImageReference(before.image) : undefined;
  if (ready.status === 'True' && current?.repository === repository) return { action: 'keep', condition: { type: 'ImageReady', status: 'True', reason: ready.reason, message: ready.message } };
  if (ready.status === 'False' && ready.reason === 'ImageBuildFailed') return { action: 'keep', condition: { type: 'ImageReady', status: 'False', reason: ready.reason, message: ready.message } };
  return { action: 'job' };
}

export interface ImageJobOutcome {
  condition: ConditionUpdate;
  /** The image to write to status.image. */
  image?: string;
  request?: boolean;
  /** Remove the job now: it errored after its retries, to be requested again later. */
  forget?: boolean;
  /** A finished job whose result this pass records; removed once the status is written. */
  consumed?: boolean;
  /** The image this pass replaces in status.image, to delete once the new one is written. */
  superseded?: string;
  pollAgain?: boolean;
}

/** What the image job's state means for the lambda. */
export function imageJobOutcome(job: ImageJobState, artifactDigest: string, previousImage: string | undefined): ImageJobOutcome {
  const building: ImageJobOutcome = { condition: { type: 'ImageReady', status: 'Unknown', reason: 'Building', message: `building the image of asset ${artifactDigest}` }, pollAgain: true };
  switch (job.state) {
    case 'absent':
      return { ...building, request: true };
    case 'pending':
      return building;
    case 'error':
      // Retries are exhausted for a failure that was not the asset's fault (registry away):
      // report it and build again later.
      return { condition: { type: 'ImageReady', status: 'False', reason: 'ImageBuildError', message: job.message }, forget: true, pollAgain: true };
    case 'done': {
      const { result } = job;
      // The builder's verdict on this asset: permanent, kept until the asset changes.
      if (result.outcome === 'failed') return { condition: { type: 'ImageReady', status: 'False', reason: 'ImageBuildFailed', message: result.message }, consumed: true };
      const superseded = previousImage && previousImage !== result.image ? previousImage : undefined;
      return {
        condition: { type: 'ImageReady', status: 'True', reason: 'Pushed', message: `asset ${artifactDigest} pushed as ${result.image}${result.size !== undefined ? ` (${result.size} bytes)` : ''}` },
        image: result.image,
        consumed: true,
        ...(superseded ? { superseded } : {}),
      };
    }
  }
}

/** The annotation listing images replaced in status.image but not yet deleted from the registry (see reconcileLambda). */
export const SUPERSEDED_IMAGES_ANNOTATION = 'kublambda.io/superseded-images';

export function supersededImages(lambda: Lambda): string[] {
  const raw = lambda.metadata.annotations?.[SUPERSEDED_IMAGES_ANNOTATION];
  return raw ? raw.split(/\s+/).filter(Boolean) : [];
}
