import { describe, expect, it } from '@jest/globals';
import { AssetNotFoundError, digestOf } from '@kublambda/artifact-store';
import type { ImageJobData } from '@kublambda/build-queue';
import { createLogger } from '@kublambda/logging';
import { RegistryError, type BuildImageOptions, type BuiltImage, type LayerFiles } from '@kublambda/oci-image';
import { BaseImageError, directImageBackend, IMAGES_DISABLED_MESSAGE, runImageJob, type DirectImageSteps, type ImageBackend } from './image-build.ts';

const logger = createLogger('builder-test', 'error');
const asset = Buffer.from('export default async () => new Response("hi")');
const artifact = { digest: digestOf(asset), size: asset.length };
const manifestDigest = `sha256:${'d'.repeat(64)}`;
const data: ImageJobData = {
  lambda: { namespace: 'shop', name: 'hello' },
  artifact,
  repository: 'lambdas/shop-hello',
  tag: artifact.digest.slice('sha256:'.length),
  settings: { namespace: 'shop', name: 'hello', runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 4, cpuMillis: 1000, network: 'outbound', stateTables: [] },
  mountFrom: [],
};

const storeWith = (bytes?: Uint8Array) => ({
  get: async (digest: string) => {
    if (!bytes) throw new AssetNotFoundError(digest, 'file:///assets');
    return bytes;
  },
});

type BuildCall = Pick<BuildImageOptions, 'target' | 'files' | 'entrypoint' | 'cmd' | 'mountFrom'>;

/** The direct backend over fake steps: what it builds is recorded in `builds`. */
function fakeBackend(overrides: Partial<DirectImageSteps> = {}): ImageBackend & { builds: BuildCall[] } {
  const builds: BuildCall[] = [];
  return { ...directImageBackend(fakeSteps(builds, overrides)), builds };
}

function fakeSteps(builds: BuildCall[], overrides: Partial<DirectImageSteps>): DirectImageSteps {
  return {
    host: 'registry.test:5000',
    readBaseRuntime: async () => ({ entrypoint: ['/usr/local/bin/node'], cmd: ['/app/main.mjs'] }),
    pickMountSource: async (candidates: string[]) => candidates[0],
    build: async (options) => {
      builds.push(options);
      const built: BuiltImage = {
        digest: manifestDigest,
        reference: `registry.test:5000/${options.target.repo}@${manifestDigest}`,
        size: 812,
        blobsSize: 1000,
        blobs: [{ digest: 'sha256:c', outcome: 'uploaded' }],
        layer: { digest: 'sha256:l', diffId: 'sha256:i', size: 100 },
      };
      return built;
    },
    ...overrides,
  };
}

const fileText = (files: LayerFiles | undefined, name: string) => {
  const file = (files as Record<string, { bytes: Uint8Array; mode: number }>)[name]!;
  return { text: Buffer.from(file.bytes).toString('utf8'), mode: file.mode };
};

const registryError = (status: number | undefined, operation: 'getManifest' | 'pushBlob' = 'pushBlob', options?: ErrorOptions) =>
  new RegistryError({ registry: 'registry.test:5000', operation, repo: 'lambdas/shop-hello', reference: 'sha256:' + 'a'.repeat(64), status, bodyExcerpt: '' }, 'detail', options);

describe('runImageJob', () => {
  it('builds the base plus lambda.json and the asset, keeping the base entrypoint and command', async () => {
    const backend = fakeBackend();
    const result = await runImageJob({ ...data, mountFrom: ['lambdas/other-hello'] }, { assets: storeWith(asset), backend, logger });
    expect(result).toEqual({ outcome: 'pushed', image: `registry.test:5000/lambdas/shop-hello@${manifestDigest}`, digest: manifestDigest, size: 812 });
    const [build] = backend.builds;
    expect(build?.target).toEqual({ repo: 'lambdas/shop-hello', tag: data.tag });
    expect(build?.entrypoint).toEqual(['/usr/local/bin/node']);
    expect(build?.cmd).toEqual(['/app/main.mjs']);
    expect(build?.mountFrom).toBe('lambdas/other-hello');
    const json = fileText(build?.files, '/lambda/lambda.json');
    expect(JSON.parse(json.text)).toEqual({ ...data.settings, artifact });
    expect(json.mode).toBe(0o644);
    expect(fileText(build?.files, '/lambda/lambda.mjs')).toEqual({ text: asset.toString('utf8'), mode: 0o644 });
  });

  it('never mounts from the target repository itself, and passes no command when the base has none', async () => {
    const backend = fakeBackend({ readBaseRuntime: async () => ({ entrypoint: ['/usr/local/bin/node'] }) });
    await runImageJob({ ...data, mountFrom: [data.repository] }, { assets: storeWith(asset), backend, logger });
    expect(backend.builds[0]?.mountFrom).toBeUndefined();
    expect(backend.builds[0]).not.toHaveProperty('cmd');
  });

  it('fails with a clear result when image builds are off', async () => {
    expect(await runImageJob(data, { assets: storeWith(asset), backend: undefined, logger })).toEqual({ outcome: 'failed', message: IMAGES_DISABLED_MESSAGE });
  });

  it.each([
    ['the asset is missing', storeWith(undefined), fakeBackend(), `asset ${artifact.digest} not found`],
    ['the store hands back other bytes', storeWith(Buffer.from('other')), fakeBackend(), `hashes to ${digestOf(Buffer.from('other'))}`],
    [
      'the registry refuses the credentials',
      storeWith(asset),
      fakeBackend({ build: async () => Promise.reject(new Error('building ...', { cause: registryError(401) })) }),
      'HTTP 401',
    ],
    ['the registry forbids the push', storeWith(asset), fakeBackend({ build: async () => Promise.reject(registryError(403)) }), 'HTTP 403'],
    [
      'the base image is missing',
      storeWith(asset),
      fakeBackend({ readBaseRuntime: async () => Promise.reject(new BaseImageError(registryError(404, 'getManifest'), 'the base image registry.test:5000/runner:v1 (IMAGE_BASE) is not in the registry')) }),
      'the base image registry.test:5000/runner:v1 (IMAGE_BASE) is not in the registry',
    ],
    ['the registry rejects the manifest', storeWith(asset), fakeBackend({ build: async () => Promise.reject(registryError(400)) }), 'HTTP 400'],
    ['a name is refused before sending', storeWith(asset), fakeBackend({ build: async () => Promise.reject(registryError(undefined)) }), 'detail'],
  ])('fails permanently when %s', async (_, assets, backend, message) => {
    const result = await runImageJob(data, { assets, backend, logger });
    expect(result.outcome).toBe('failed');
    expect(result.outcome === 'failed' && result.message).toContain(message);
    expect(result.outcome === 'failed' && result.message).toContain('building image registry.test:5000/lambdas/shop-hello:');
  });

  it.each([
    ['the registry is unreachable', registryError(undefined, 'pushBlob', { cause: new Error('ECONNREFUSED') })],
    ['the registry answers 503', registryError(503)],
    ['a 404 other than the base image (a blob vanished mid-push)', registryError(404)],
    ['the registry is rate limiting', registryError(429)],
    ['the artifact store is down', new Error('S3 is down')],
  ])('throws, so the queue retries, when %s', async (_, error) => {
    const backend = fakeBackend({ build: async () => Promise.reject(error) });
    await expect(runImageJob(data, { assets: storeWith(asset), backend, logger })).rejects.toThrow('building image registry.test:5000/lambdas/shop-hello:');
  });
});
