import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { sha256Digest } from './digest.ts';
import { readTar, writeTar, type TarEntry, type TarReadEntry } from './tar.ts';

/** Pinned so that the same files give the same compressed bytes (and digest) on every build. */
export const LAYER_GZIP_LEVEL = 6;
const DIRECTORY_MODE = 0o755;

export interface LayerFile {
  bytes: Uint8Array;
  /** Permission bits, such as 0o644 or 0o755. */
  mode: number;
}

/** Absolute paths in the image (`/app/hello.mjs`) to their contents. */
export type LayerFiles = ReadonlyMap<string, LayerFile> | Readonly<Record<string, LayerFile>>;

export interface LayerOptions {
  /**
   * Directories given a mode of their own (`{ '/tmp': 0o1777 }`), present even when empty.
   * Other directories are the parents of files, made 0755.
   */
  directories?: Readonly<Record<string, number>>;
}

export interface ImageLayer {
  compressed: Buffer;
  /** The digest of the compressed bytes: what the manifest and the registry name the blob by. */
  compressedDigest: string;
  /** The digest of the uncompressed tar: what the config's `rootfs.diff_ids` lists. */
  diffId: string;
  /** Of the compressed bytes. */
  size: number;
  /** Of the tar: what the layer takes once unpacked, near enough. */
  uncompressedSize: number;
}

/**
 * A reproducible gzip'd tar of the files: entries sorted by path, every parent directory
 * present (0755 unless `options.directories` gives it a mode), owner 0:0, mtime 0, ustar; gzip at a pinned level whose header carries no
 * time and no name (node:zlib writes mtime 0 and no FNAME).
 */
export function createImageLayer(files: LayerFiles, options: LayerOptions = {}): ImageLayer {
  const tar = writeTar(layerTarEntries(files, options.directories));
  const compressed = gzipSync(tar, { level: LAYER_GZIP_LEVEL });
  return { compressed, compressedDigest: sha256Digest(compressed), diffId: sha256Digest(tar), size: compressed.length, uncompressedSize: tar.length };
}

/** The tar entries for the files and directories, parents included, in byte order of their paths. */
export function layerTarEntries(files: LayerFiles, directories: Readonly<Record<string, number>> = {}): TarEntry[] {
  const entries = new Map<string, TarEntry>();
  // A directory given a mode is kept with it when files below it add their parents.
  const modes = new Map<string, number>();
  for (const [directoryPath, mode] of Object.entries(directories)) {
    const relative = imagePath(directoryPath);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error(`layer: the directory ${JSON.stringify(directoryPath)} has an invalid mode ${mode}`);
    modes.set(relative, mode);
    const parts = relative.split('/');
    for (let depth = 1; depth <= parts.length; depth++) {
      const directory = parts.slice(0, depth).join('/');
      entries.set(directory, { path: directory, type: 'directory', mode: modes.get(directory) ?? DIRECTORY_MODE });
    }
  }
  for (const [filePath, file] of files instanceof Map ? files : Object.entries(files)) {
    const relative = imagePath(filePath);
    const parts = relative.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      const directory = parts.slice(0, depth).join('/');
      const existing = entries.get(directory);
      if (existing?.type === 'file') throw new Error(`layer: ${JSON.stringify('/' + directory)} is both a file and a directory`);
      entries.set(directory, { path: directory, type: 'directory', mode: modes.get(directory) ?? DIRECTORY_MODE });
    }
    if (entries.has(relative)) throw new Error(`layer: ${JSON.stringify(filePath)} is both a file and a directory`);
    if (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777) throw new Error(`layer: ${JSON.stringify(filePath)} has an invalid mode ${file.mode}`);
    entries.set(relative, { path: relative, type: 'file', mode: file.mode, bytes: file.bytes });
  }
  return [...entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** `/usr/local/bin/node` -> `usr/local/bin/node`; refuses relative paths and `..`. */
function imagePath(filePath: string): string {
  if (!filePath.startsWith('/')) throw new Error(`layer: ${JSON.stringify(filePath)} is not an absolute path`);
  const relative = filePath.slice(1);
  if (relative === '' || relative.endsWith('/') || path.posix.normalize(relative) !== relative || relative.split('/').includes('..')) {
    throw new Error(`layer: ${JSON.stringify(filePath)} is not a normalized file path`);
  }
  return relative;
}

/** The entries of a gzip'd tar layer. */
export function readImageLayer(compressed: Buffer): TarReadEntry[] {
  return readTar(gunzipSync(compressed));
}
