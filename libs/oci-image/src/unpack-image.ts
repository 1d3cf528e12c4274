import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { getSinglePlatformManifest } from './build-image.ts';
import type { ImageManifestJson } from './image-data.ts';
import { readImageLayer } from './image-layer.ts';
import type { RegistryClient } from './registry-client.ts';

/**
 * Pulls an image through the registry API and unpacks its layers in order into `dir` (a fresh,
 * empty directory). Minimal: regular files and directories only; whiteouts, links and device
 * files are refused rather than half-handled; no entry may leave the directory.
 */
export async function unpackImage(registry: RegistryClient, repo: string, reference: string, dir: string): Promise<{ digest: string; files: number }> {
  const manifest = await getSinglePlatformManifest(registry, repo, reference);
  const image = JSON.parse(manifest.bytes.toString('utf8')) as ImageManifestJson;
  let files = 0;
  for (const layer of image.layers) {
    if (!layer.mediaType.endsWith('+gzip')) throw new Error(`unpack: layer ${layer.digest} has media type ${layer.mediaType}; only gzip'd tar layers are unpacked`);
    for (const entry of readImageLayer(await registry.getBlob(repo, layer.digest))) {
      const relative = path.posix.normalize(entry.path.replace(/^\.\//, ''));
      if (relative.startsWith('/') || relative === '..' || relative.startsWith('../')) throw new Error(`unpack: layer ${layer.digest} has an entry outside the image: ${entry.path}`);
      if (path.posix.basename(relative).startsWith('.wh.')) throw new Error(`unpack: layer ${layer.digest} has a whiteout (${entry.path}); whiteouts are not supported`);
      const target = path.join(dir, relative);
      if (entry.typeFlag === '5') {
        await mkdir(target, { recursive: true });
        await chmod(target, entry.mode & 0o7777);
      } else if (entry.typeFlag === '0') {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, entry.bytes);
        await chmod(target, entry.mode & 0o7777);
        files++;
      } else {
        throw new Error(`unpack: layer ${layer.digest} has ${entry.path} of tar type ${JSON.stringify(entry.typeFlag)}; only files and directories are supported`);
      }
    }
  }
  return { digest: manifest.digest, files };
}
