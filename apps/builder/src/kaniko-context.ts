// A Kaniko build context: a generated Dockerfile (FROM the base, a COPY per file, no RUN: no
// user code runs in the build pod) and the files, as a reproducible tar.gz (libs/oci-image's
// layer writer: sorted entries, mtime 0, owner 0:0, gzip without a timestamp).
import path from 'node:path';
import { createImageLayer, type LayerFile } from '@kublambda/oci-image';

export interface KanikoContext {
  archive: Buffer;
  digest: string;
}

/** The Dockerfile: each file at its place in the image, copied from the same path in the context. */
export function kanikoDockerfile(baseImage: string, imagePaths: readonly string[]): string {
  if (/\s/.test(baseImage) || baseImage === '') throw new Error(`kaniko context: the base image ${JSON.stringify(baseImage)} is not an image reference`);
  const copies = [...imagePaths].sort().map((imagePath) => `COPY ${contextPath(imagePath)} ${imagePath}`);
  return [`FROM ${baseImage}`, ...copies, ''].join('\n');
}

/** The context archive: Dockerfile at its root, each file under its image path (without the leading slash). */
export function createKanikoContext(baseImage: string, files: Readonly<Record<string, LayerFile>>): KanikoContext {
  const imagePaths = Object.keys(files);
  const entries: Record<string, LayerFile> = { '/Dockerfile': { bytes: Buffer.from(kanikoDockerfile(baseImage, imagePaths)), mode: 0o644 } };
  for (const imagePath of imagePaths) entries[`/${contextPath(imagePath)}`] = files[imagePath]!;
  const layer = createImageLayer(entries);
  return { archive: layer.compressed, digest: layer.compressedDigest };
}

/** `/lambda/lambda.json` -> `lambda/lambda.json`; refuses what a Dockerfile line cannot carry as is. */
function contextPath(imagePath: string): string {
  if (!imagePath.startsWith('/') || path.posix.normalize(imagePath) !== imagePath || imagePath === '/Dockerfile' || !/^[A-Za-z0-9/._-]+$/.test(imagePath)) {
    throw new Error(`kaniko context: ${JSON.stringify(imagePath)} is not a plain absolute file path`);
  }
  return imagePath.slice(1);
}
