import type { ImageData } from './image-data.ts';
import type { BlobPushOutcome, RegistryClient } from './registry-client.ts';

export interface BlobSource {
  /** The bytes, read only if the registry needs them uploaded. */
  read(): Promise<Uint8Array>;
  /** A repository in the same registry that holds the blob, to mount it from. */
  mountFrom?: string;
}

export interface PushedImage {
  /** The manifest's digest. */
  digest: string;
  /** `<registry host>/<repo>@sha256:...`: what a pod spec should name. */
  reference: string;
  /** Of the manifest, as in a descriptor of it. */
  size: number;
  /** Config and layers, compressed, as stored. */
  blobsSize: number;
  /** What the push did with each blob, config first. */
  blobs: Array<{ digest: string; outcome: BlobPushOutcome }>;
}

/**
 * Pushes the image's blobs into the target repository (each skipped when present, mounted
 * when its source names a repository, uploaded otherwise), then its manifest under the tag.
 * `sources` holds the bytes of each layer by digest; the config comes with the image.
 */
export async function pushImage(
  registry: RegistryClient,
  target: { repo: string; tag: string },
  image: ImageData,
  sources: ReadonlyMap<string, BlobSource>,
  configMountFrom?: string,
): Promise<PushedImage> {
  const blobs: PushedImage['blobs'] = [];
  blobs.push({
    digest: image.configDigest,
    outcome: await registry.ensureBlob(target.repo, image.configDigest, async () => image.config, configMountFrom),
  });
  // One at a time: a registry on a shared machine, and layers of tens of MB.
  for (const layer of image.layers) {
    const source = sources.get(layer.digest);
    if (!source) throw new Error(`pushing ${target.repo}:${target.tag}: no source for the layer ${layer.digest}`);
    blobs.push({ digest: layer.digest, outcome: await registry.ensureBlob(target.repo, layer.digest, () => source.read(), source.mountFrom) });
  }
  const digest = await registry.putManifest(target.repo, target.tag, image.manifest, JSON.parse(image.manifest.toString('utf8')).mediaType);
  return {
    digest,
    reference: `${registry.host}/${target.repo}@${digest}`,
    size: image.manifest.length,
    blobsSize: image.config.length + image.layers.reduce((sum, layer) => sum + layer.size, 0),
    blobs,
  };
}
