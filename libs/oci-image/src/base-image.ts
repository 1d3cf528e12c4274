// A minimal runner base image made without Docker: the Node binary this process runs on, the
// shared libraries it loads (at the paths ldd names, the dynamic loader included), and an
// optional directory of app files. No shell, no /etc: node is the only program in it.
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { imageFromLayers, type ImageData } from './image-data.ts';
import { createImageLayer, type ImageLayer, type LayerFile } from './image-layer.ts';
import { OCI_LAYER_GZIP } from './media-types.ts';
import { pushImage, type PushedImage } from './push-image.ts';
import type { RegistryClient } from './registry-client.ts';

export const BASE_IMAGE_NODE_PATH = '/usr/local/bin/node';
export const BASE_IMAGE_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

export interface BaseImageFilesOptions {
  /** Default process.execPath (the pinned Node from node_modules under `npm test`). */
  nodeBinary?: string;
  /** A directory whose files go under `appPrefix` (default `/app`). */
  appDir?: string;
  appPrefix?: string;
}

/** The files of the base image, read from this machine. */
export async function collectBaseImageFiles(options: BaseImageFilesOptions = {}): Promise<Map<string, LayerFile>> {
  const nodeBinary = options.nodeBinary ?? process.execPath;
  const files = new Map<string, LayerFile>();
  files.set(BASE_IMAGE_NODE_PATH, { bytes: await readFile(nodeBinary), mode: 0o755 });
  const { stdout } = await promisify(execFile)('ldd', [nodeBinary], { encoding: 'utf8' });
  for (const library of parseLddOutput(stdout, nodeBinary)) {
    // Contents of the file the path resolves to, stored as a regular file at the path ldd names.
    files.set(library, { bytes: await readFile(library), mode: (await stat(library)).mode & 0o777 });
  }
  if (options.appDir !== undefined) {
    const prefix = options.appPrefix ?? '/app';
    for (const relative of await listFiles(options.appDir)) {
      const source = path.join(options.appDir, relative);
      files.set(path.posix.join(prefix, relative.split(path.sep).join('/')), { bytes: await readFile(source), mode: (await stat(source)).mode & 0o777 });
    }
  }
  return files;
}

/**
 * The absolute paths of the libraries in `ldd` output, the dynamic loader included; the vDSO
 * (no file) left out. A library ldd cannot find is an error: the image would not start.
 */
export function parseLddOutput(output: string, binary = 'the binary'): string[] {
  const libraries: string[] = [];
  for (const rawLine of output.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || /statically linked|not a dynamic executable/.test(line)) continue;
    const notFound = /^(\S+) => not found$/.exec(line);
    if (notFound) throw new Error(`ldd: ${binary} needs ${notFound[1]}, which is not installed`);
    const mapped = /^\S+ => (\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    const direct = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    const library = mapped?.[1] ?? direct?.[1];
    if (library) libraries.push(library);
    else if (!/^\S+ \(0x[0-9a-f]+\)$/.test(line)) throw new Error(`ldd: cannot read the line ${JSON.stringify(line)} for ${binary}`);
  }
  return [...new Set(libraries)].sort();
}

async function listFiles(dir: string, relative = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(dir, relative), { withFileTypes: true })) {
    const child = path.join(relative, entry.name);
    if (entry.isDirectory()) found.push(...(await listFiles(dir, child)));
    else if (entry.isFile()) found.push(child);
    else throw new Error(`base image: ${path.join(dir, child)} is neither a file nor a directory`);
  }
  return found;
}

export interface BaseImage {
  image: ImageData;
  layer: ImageLayer;
}

/** One layer of the files; Entrypoint node, PATH set, created at the epoch. Pure: same files, same digest. */
export function createBaseImage(files: ReadonlyMap<string, LayerFile>, created?: string): BaseImage {
  const layer = createImageLayer(files);
  const image = imageFromLayers([{ descriptor: { mediaType: OCI_LAYER_GZIP, digest: layer.compressedDigest, size: layer.size }, diffId: layer.diffId }], {
    entrypoint: [BASE_IMAGE_NODE_PATH],
    env: BASE_IMAGE_ENV,
    createdBy: 'kublambda: node, its shared libraries and app files',
    ...(created ? { created } : {}),
  });
  return { image, layer };
}

/** Pushes a base image made by createBaseImage. */
export async function pushBaseImage(registry: RegistryClient, target: { repo: string; tag: string }, base: BaseImage): Promise<PushedImage> {
  return pushImage(registry, target, base.image, new Map([[base.layer.compressedDigest, { read: async () => base.layer.compressed }]]));
}
