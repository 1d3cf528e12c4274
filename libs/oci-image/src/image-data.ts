// An image as data: config and manifest JSON made by pure functions from bytes, with the
// digests computed once, where the bytes are made.
import { sha256Digest } from './digest.ts';
import { DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.ts';

/** Default `created` for configs and history: the Unix epoch, so builds are reproducible. */
export const EPOCH = '1970-01-01T00:00:00Z';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ImageManifestJson {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Array<Descriptor & { platform?: { os?: string; architecture?: string; variant?: string } }>;
}

export interface ImageConfigJson {
  created?: string;
  architecture?: string;
  os?: string;
  config?: { Env?: string[] | null; Entrypoint?: string[] | null; Cmd?: string[] | null; [key: string]: unknown };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

/** A config and manifest ready to push; the layer blobs are pushed from elsewhere. */
export interface ImageData {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  layers: Descriptor[];
}

export interface ImageSettings {
  entrypoint: string[];
  /** Merged into the base's: a name given here replaces the base's value. */
  env?: Readonly<Record<string, string>>;
  /** Replaces the base's Cmd; without it there is none (as a Dockerfile ENTRYPOINT does). */
  cmd?: string[];
  /** For the config and its history entry; default the Unix epoch. */
  created?: string;
  /** The new history entry's `created_by`. */
  createdBy?: string;
  /** The config's User (`65532:65532`); without it the base's, or none (root). */
  user?: string;
  /** Merged into the base's Labels (`org.opencontainers.image.*`), written in name order. */
  labels?: Readonly<Record<string, string>>;
}

export interface AppendedLayer {
  descriptor: Descriptor;
  diffId: string;
}

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/**
 * The base's config with one layer appended (its diff id in `rootfs.diff_ids`, a history
 * entry) and the entrypoint, command and environment set; and an OCI manifest listing the
 * base's layers and the new one. A pure function of its inputs: the same inputs, the same digest.
 */
export function appendLayer(baseManifest: ImageManifestJson, baseConfig: Buffer, layer: AppendedLayer, settings: ImageSettings): ImageData {
  if (baseManifest.mediaType !== undefined && baseManifest.mediaType !== OCI_MANIFEST && baseManifest.mediaType !== DOCKER_MANIFEST) {
    throw new Error(`image: the base manifest has media type ${baseManifest.mediaType}, not a single-platform image manifest`);
  }
  const config = JSON.parse(baseConfig.toString('utf8')) as ImageConfigJson;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== baseManifest.layers.length) {
    throw new Error(`image: the base config lists ${diffIds.length} diff ids for ${baseManifest.layers.length} layers`);
  }
  const created = settings.created ?? EPOCH;
  const { Cmd: _baseCmd, ...baseRuntime } = config.config ?? {};
  const derived: ImageConfigJson = {
    ...config,
    created,
    config: {
      ...baseRuntime,
      Env: mergeEnv(config.config?.Env ?? [], settings.env ?? {}),
      Entrypoint: settings.entrypoint,
      ...(settings.cmd ? { Cmd: settings.cmd } : {}),
      ...userAndLabels(settings, baseRuntime.Labels as Record<string, string> | undefined),
    },
    rootfs: { type: 'layers', diff_ids: [...diffIds, layer.diffId] },
    history: [...(config.history ?? []), { created, created_by: settings.createdBy ?? 'kublambda: files added' }],
  };
  return imageData(derived, [...baseManifest.layers.map(ociLayerDescriptor), layer.descriptor]);
}

/** A config for an image made of the layers alone (no base). */
export function imageFromLayers(layers: AppendedLayer[], settings: ImageSettings, platform = { os: 'linux', architecture: 'amd64' }): ImageData {
  const created = settings.created ?? EPOCH;
  const config: ImageConfigJson = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: mergeEnv([], settings.env ?? {}), Entrypoint: settings.entrypoint, ...(settings.cmd ? { Cmd: settings.cmd } : {}), ...userAndLabels(settings) },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({ created, created_by: settings.createdBy ?? 'kublambda: files added' })),
  };
  return imageData(config, layers.map((layer) => layer.descriptor));
}

/** User and Labels for the config, present only when given, so that images without them keep their digests. */
function userAndLabels(settings: ImageSettings, baseLabels: Readonly<Record<string, string>> = {}): { User?: string; Labels?: Record<string, string> } {
  const merged = { ...baseLabels, ...settings.labels };
  const names = Object.keys(merged).sort();
  return {
    ...(settings.user !== undefined ? { User: settings.user } : {}),
    ...(settings.labels !== undefined ? { Labels: Object.fromEntries(names.map((name) => [name, merged[name]!])) } : {}),
  };
}

function imageData(config: ImageConfigJson, layers: Descriptor[]): ImageData {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256Digest(configBytes);
  const manifest: ImageManifestJson = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { config: configBytes, configDigest, manifest: manifestBytes, manifestDigest: sha256Digest(manifestBytes), layers };
}

/** Docker's gzip layer type is the same bytes as OCI's; anything not distributable is refused. */
function ociLayerDescriptor(layer: Descriptor): Descriptor {
  const { mediaType, digest, size } = layer;
  if (mediaType === DOCKER_LAYER_GZIP) return { mediaType: OCI_LAYER_GZIP, digest, size };
  if (mediaType.startsWith('application/vnd.oci.image.layer.v1.tar') && !mediaType.includes('nondistributable')) return { mediaType, digest, size };
  throw new Error(`image: the base layer ${digest} has media type ${mediaType}, which this builder does not copy`);
}

/** The base's `NAME=value` list with the given names replaced in place and new ones appended in name order. */
export function mergeEnv(base: readonly string[], env: Readonly<Record<string, string>>): string[] {
  for (const name of Object.keys(env)) {
    if (name === '' || name.includes('=') || name.includes('\0')) throw new Error(`image: ${JSON.stringify(name)} is not an environment variable name`);
  }
  const given = new Map(Object.entries(env));
  const merged = base.map((entry) => {
    const name = entry.split('=', 1)[0]!;
    if (!given.has(name)) return entry;
    const value = given.get(name)!;
    given.delete(name);
    return `${name}=${value}`;
  });
  const added = [...given.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, value]) => `${name}=${value}`);
  return [...merged, ...added];
}

/** Picks the platform's manifest from an index, or explains which platforms there are. */
export function pickPlatformManifest(index: ImageIndexJson, platform = { os: 'linux', architecture: 'amd64' }): Descriptor {
  const match = index.manifests.find((entry) => entry.platform?.os === platform.os && entry.platform?.architecture === platform.architecture);
  if (match) return { mediaType: match.mediaType, digest: match.digest, size: match.size };
  const available = index.manifests.map((entry) => `${entry.platform?.os ?? '?'}/${entry.platform?.architecture ?? '?'}`).join(', ') || 'none';
  throw new Error(`image: the base is a multi-platform index without a ${platform.os}/${platform.architecture} image (it has: ${available}); only single-platform bases are built on`);
}

