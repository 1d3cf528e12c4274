import { AssetCorruptError, AssetNotFoundError, digestOf, type ArtifactStore } from '@kublambda/artifact-store';
import { imageJobId as imageJobIdOf, type ImageJobData, type ImageJobResult } from '@kublambda/build-queue';
import { forLambda, type Logger } from '@kublambda/logging';
import {
  buildImage,
  createImageLayer,
  getSinglePlatformManifest,
  RegistryError,
  type BuildImageOptions,
  type BuiltImage,
  type ImageConfigJson,
  type ImageManifestJson,
  type LayerFile,
  type LayerFiles,
  type RegistryClient,
} from '@kublambda/oci-image';
import { STANDALONE_ASSET_FILE, STANDALONE_LAMBDA_FILE, type StandaloneLambda } from '@kublambda/route-table';

/** What one image build hands the backend: the job, and the files of the lambda's layer by their path in the image. */
export interface ImagePushRequest {
  data: ImageJobData;
  /** The queue's id of the job (imageJobId): the backend's own names for the build derive from it. */
  imageJobId: string;
  files: Record<string, LayerFile>;
  /** Repositories that may hold the image's blobs, the target itself left out. */
  mountFrom: string[];
  log: Logger;
}

export interface PushedImage {
  /** The manifest's digest. */
  digest: string;
  /** The manifest's size, when the backend knows it. */
  size?: number;
  /** What the backend did, for the log line. */
  detail?: Record<string, unknown>;
}

/**
 * An image backend builds the runner base plus the request's files and pushes it as
 * `<repository>:<tag>`. A failure retrying cannot fix is a PermanentImageError (or a
 * RegistryError that permanentReason judges so); anything else is retried by the queue.
 */
export interface ImageBackend {
  /** host[:port] of the registry, as it appears in image references. */
  host: string;
  push(request: ImagePushRequest): Promise<PushedImage>;
}

export interface ImageJobDeps {
  assets: Pick<ArtifactStore, 'get'>;
  /** Undefined when IMAGE_BACKEND=off: every image job fails with a result saying so. */
  backend: ImageBackend | undefined;
  logger: Logger;
}

export const IMAGES_DISABLED_MESSAGE = 'image builds are disabled in this builder (IMAGE_BACKEND=off)';

/** A problem that retrying cannot fix: the job's result says failed, with this message. */
export class PermanentImageError extends Error {}

/**
 * Builds a lambda's image: the runner base plus one layer holding lambda.json and the asset,
 * pushed to the registry. What retrying cannot fix (the asset missing or corrupt, the registry
 * refusing the credentials, the base image missing) is a failed result; anything else throws,
 * so the queue retries it with the job's backoff.
 */
export async function runImageJob(data: ImageJobData, deps: ImageJobDeps): Promise<ImageJobResult> {
  const log = forLambda(deps.logger, data.lambda);
  const target = `${data.repository}:${data.tag}`;
  if (!deps.backend) {
    log.warn('image build refused', { repository: data.repository, message: IMAGES_DISABLED_MESSAGE });
    return { outcome: 'failed', message: IMAGES_DISABLED_MESSAGE };
  }
  const backend = deps.backend;
  const started = Date.now();
  try {
    const asset = await readAsset(deps.assets, data.artifact);
    const lambda: StandaloneLambda = { ...data.settings, artifact: data.artifact };
    const files: Record<string, LayerFile> = {
      [STANDALONE_LAMBDA_FILE]: { bytes: Buffer.from(JSON.stringify(lambda)), mode: 0o644 },
      [STANDALONE_ASSET_FILE]: { bytes: Buffer.from(asset), mode: 0o644 },
    };
    const mountFrom = data.mountFrom.filter((repo) => repo !== data.repository);
    const imageJobId = imageJobIdOf(data.lambda, data.artifact.digest, data.repository);
    const pushed = await backend.push({ data, imageJobId, files, mountFrom, log });
    const image = `${backend.host}/${data.repository}@${pushed.digest}`;
    log.info('image pushed', { image, artifact: data.artifact.digest, ...pushed.detail, ms: Date.now() - started });
    return { outcome: 'pushed', image, digest: pushed.digest, ...(pushed.size !== undefined ? { size: pushed.size } : {}) };
  } catch (error) {
    const permanent = permanentReason(error);
    if (permanent) {
      const message = `building image ${backend.host}/${target} for ${data.lambda.namespace}/${data.lambda.name}: ${permanent}`;
      log.warn('image build failed', { repository: data.repository, message });
      return { outcome: 'failed', message };
    }
    throw new Error(`building image ${backend.host}/${target} for ${data.lambda.namespace}/${data.lambda.name}: ${(error as Error).message}`, { cause: error });
  }
}

async function readAsset(assets: Pick<ArtifactStore, 'get'>, artifact: { digest: string; size: number }): Promise<Uint8Array> {
  try {
    const bytes = await assets.get(artifact.digest);
    // The store checks the digest too; a store that did not would put a wrong asset into an image.
    const actual = digestOf(bytes);
    if (actual !== artifact.digest) throw new PermanentImageError(`the asset ${artifact.digest} read from the artifact store hashes to ${actual}`);
    if (bytes.length !== artifact.size) throw new PermanentImageError(`the asset ${artifact.digest} is ${bytes.length} bytes, the job says ${artifact.size}`);
    return bytes;
  } catch (error) {
    if (error instanceof AssetNotFoundError || error instanceof AssetCorruptError) throw new PermanentImageError(error.message, { cause: error });
    throw error;
  }
}

/** Why retrying cannot help, or undefined when it may (connection failures, 5xx, timeouts). */
export function permanentReason(error: unknown): string | undefined {
  if (error instanceof PermanentImageError) return error.message;
  const registryError = findRegistryError(error);
  if (!registryError) return undefined;
  const { status } = registryError;
  if (status === 401) return `${registryError.message} (check IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD)`;
  if (status === 403) return `${registryError.message} (the builder's registry user may not do this)`;
  if (status === undefined) {
    // Refused before any request was sent (an invalid repository name or tag): the input is wrong.
    return registryError.cause === undefined ? registryError.message : undefined;
  }
  if (status === 404 && registryError instanceof BaseImageError) return registryError.message;
  // Other client errors (a manifest or name the registry rejects) repeat on every attempt.
  if (status >= 400 && status < 500 && status !== 404 && status !== 408 && status !== 429) return registryError.message;
  return undefined;
}

function findRegistryError(error: unknown): RegistryError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 10; current = current.cause, depth++) {
    if (current instanceof RegistryError) return current;
  }
  return undefined;
}

/** A RegistryError about the base image, whose 404 means the configured base is missing. */
export class BaseImageError extends RegistryError {}

function countOutcomes(blobs: BuiltImage['blobs']): Record<string, number> {
  const counts: Record<string, number> = { present: 0, mounted: 0, uploaded: 0 };
  for (const blob of blobs) counts[blob.outcome] = (counts[blob.outcome] ?? 0) + 1;
  return counts;
}

/** The steps of the direct backend, behind an interface so the job's logic is tested without a registry. */
export interface DirectImageSteps {
  /** host[:port] of the registry, as it appears in image references. */
  host: string;
  /** The base image's entrypoint and command, kept in the image built on it. */
  readBaseRuntime(): Promise<{ entrypoint: string[]; cmd?: string[] }>;
  /** Of several repositories that may hold the new layer, the one to mount it from (or none). */
  pickMountSource(candidates: string[], files: LayerFiles): Promise<string | undefined>;
  build(options: Pick<BuildImageOptions, 'target' | 'files' | 'entrypoint' | 'cmd' | 'mountFrom'>): Promise<BuiltImage>;
}

/** IMAGE_BACKEND=direct: the builder assembles the image itself (base + one layer) and pushes it. */
export function directImageBackend(steps: DirectImageSteps): ImageBackend {
  return {
    host: steps.host,
    async push({ data, files, mountFrom: candidates }) {
      const runtime = await steps.readBaseRuntime();
      const mountFrom = await steps.pickMountSource(candidates, files);
      const built = await steps.build({
        target: { repo: data.repository, tag: data.tag },
        files,
        entrypoint: runtime.entrypoint,
        ...(runtime.cmd ? { cmd: runtime.cmd } : {}),
        ...(mountFrom ? { mountFrom } : {}),
      });
      return { digest: built.digest, size: built.size, detail: { mountFrom, blobs: countOutcomes(built.blobs) } };
    },
  };
}

/** IMAGE_BACKEND=direct against a registry (libs/oci-image). */
export function createDirectImageBackend(registry: RegistryClient, base: { repo: string; reference: string }): ImageBackend {
  return directImageBackend(registryImageSteps(registry, base));
}

function registryImageSteps(registry: RegistryClient, base: { repo: string; reference: string }): DirectImageSteps {
  const baseName = `${registry.host}/${base.repo}${base.reference.startsWith('sha256:') ? '@' : ':'}${base.reference}`;
  return {
    host: registry.host,
    async readBaseRuntime() {
      try {
        const manifest = await getSinglePlatformManifest(registry, base.repo, base.reference);
        const image = JSON.parse(manifest.bytes.toString('utf8')) as ImageManifestJson;
        const config = JSON.parse((await registry.getBlob(base.repo, image.config.digest)).toString('utf8')) as ImageConfigJson;
        return { entrypoint: config.config?.Entrypoint ?? [], ...(config.config?.Cmd ? { cmd: config.config.Cmd } : {}) };
      } catch (error) {
        if (error instanceof RegistryError && error.status === 404) {
          throw new BaseImageError(error, `the base image ${baseName} (IMAGE_BASE) is not in the registry`, { cause: error });
        }
        throw error;
      }
    },
    async pickMountSource(candidates, files) {
      if (candidates.length <= 1) return candidates[0];
      // The layer is reproducible: the same files give the same digest, so ask which candidate holds it.
      const layer = createImageLayer(files);
      for (const repo of candidates) {
        if (await registry.headBlob(repo, layer.compressedDigest).catch(() => undefined)) return repo;
      }
      return candidates[0];
    },
    build: (options) => buildImage({ registry, base, ...options }),
  };
}
