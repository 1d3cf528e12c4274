import { appendLayer, isIndexMediaType, pickPlatformManifest, type ImageData, type ImageIndexJson, type ImageManifestJson, type ImageSettings } from './image-data.ts';
import { createImageLayer, type LayerFiles } from './image-layer.ts';
import { OCI_LAYER_GZIP } from './media-types.ts';
import { pushImage, type BlobSource, type PushedImage } from './push-image.ts';
import type { Manifest, RegistryClient } from './registry-client.ts';

export interface BuildImageOptions extends ImageSettings {
  /** Where the image is pushed (and, unless `base.registry` says otherwise, where the base is). */
  registry: RegistryClient;
  base: { repo: string; reference: string; registry?: RegistryClient };
  target: { repo: string; tag: string };
  /** The files of the one layer added: absolute path -> bytes and mode. */
  files: LayerFiles;
  /** A repository of the same registry that may already hold the new layer and config (an earlier version). */
  mountFrom?: string;
}

export interface BuiltImage extends PushedImage {
  /** The added layer's digests. */
  layer: { digest: string; diffId: string; size: number };
}

/**
 * Builds base + one layer of files and pushes it: fetches the base's manifest (picking
 * linux/amd64 from an index) and config, appends the layer, pushes what the target lacks
 * (base layers mounted from the base repository when they share a registry), then the
 * manifest by tag. Reproducible: the same files on the same base give the same digest.
 */
export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const { registry, base, target } = options;
  const baseRegistry = base.registry ?? registry;
  const sameRegistry = baseRegistry === registry || baseRegistry.host === registry.host;
  try {
    const baseManifest = await getSinglePlatformManifest(baseRegistry, base.repo, base.reference);
    const baseImage = JSON.parse(baseManifest.bytes.toString('utf8')) as ImageManifestJson;
    const baseConfig = await baseRegistry.getBlob(base.repo, baseImage.config.digest);
    const layer = createImageLayer(options.files);
    const image: ImageData = appendLayer(
      baseImage,
      baseConfig,
      { descriptor: { mediaType: OCI_LAYER_GZIP, digest: layer.compressedDigest, size: layer.size }, diffId: layer.diffId },
      options,
    );
    const sources = new Map<string, BlobSource>();
    for (const baseLayer of baseImage.layers) {
      sources.set(baseLayer.digest, {
        read: () => baseRegistry.getBlob(base.repo, baseLayer.digest),
        ...(sameRegistry ? { mountFrom: base.repo } : {}),
      });
    }
    sources.set(layer.compressedDigest, { read: async () => layer.compressed, ...(options.mountFrom ? { mountFrom: options.mountFrom } : {}) });
    const pushed = await pushImage(registry, target, image, sources, options.mountFrom);
    return { ...pushed, layer: { digest: layer.compressedDigest, diffId: layer.diffId, size: layer.size } };
  } catch (cause) {
    throw new Error(`building ${registry.host}/${target.repo}:${target.tag} on ${baseRegistry.host}/${base.repo}:${base.reference}: ${(cause as Error).message}`, { cause });
  }
}

/** The manifest by reference; from an index, its linux/amd64 entry. */
export async function getSinglePlatformManifest(registry: RegistryClient, repo: string, reference: string): Promise<Manifest> {
  const manifest = await registry.getManifest(repo, reference);
  if (!isIndexMediaType(manifest.mediaType)) return manifest;
  const entry = pickPlatformManifest(JSON.parse(manifest.bytes.toString('utf8')) as ImageIndexJson);
  const picked = await registry.getManifest(repo, entry.digest);
  if (isIndexMediaType(picked.mediaType)) throw new Error(`image: ${repo}@${entry.digest} is an index inside an index`);
  return picked;
}
