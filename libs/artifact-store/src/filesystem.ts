import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { AssetNotFoundError, failure, verified, type ArtifactStore, type AssetRef } from './artifact-store.ts';
import { ASSET_FOLDER, assetKey, digestOf, digestOfAssetName } from './digest.ts';

/**
 * Assets as files `<dir>/sha256/<hex>`; the directory is created on the first put. `put` skips
 * the write when a file of the same size is there already, so a truncated copy gets replaced.
 */
export function createFilesystemArtifactStore(options: { dir: string }): ArtifactStore {
  const assetDir = path.join(options.dir, ASSET_FOLDER);
  const fileOf = (digest: string) => path.join(options.dir, assetKey(digest));

  return {
    async put(asset) {
      const ref = { digest: digestOf(asset), size: asset.byteLength };
      const file = fileOf(ref.digest);
      try {
        if ((await unlessMissing(stat(file)))?.size !== ref.size) await writeAtomically(file, asset);
      } catch (cause) {
        throw failure(`storing asset ${ref.digest} at ${file}`, cause);
      }
      return ref;
    },

    async get(digest) {
      const file = fileOf(digest);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (cause) {
        if (isMissingFile(cause)) throw new AssetNotFoundError(digest, file);
        throw failure(`reading asset ${digest} from ${file}`, cause);
      }
      return verified(digest, bytes, file);
    },

    async has(digest) {
      const file = fileOf(digest);
      try {
        return (await unlessMissing(stat(file))) !== undefined;
      } catch (cause) {
        throw failure(`checking for asset ${digest} at ${file}`, cause);
      }
    },

    async delete(digest) {
      const file = fileOf(digest);
      try {
        await rm(file, { force: true });
      } catch (cause) {
        throw failure(`deleting asset ${digest} at ${file}`, cause);
      }
    },

    async list() {
      try {
        return await listAssets(assetDir);
      } catch (cause) {
        throw failure(`listing assets in ${assetDir}`, cause);
      }
    },
  };
}

/**
 * Writes and flushes a temporary file next to the final one, then renames it into place, so a
 * crash leaves either no file or the whole asset under the final name. Temporary names are
 * not hex digests, so `list` never reports one a crash left behind.
 */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const temporary = path.join(dir, `.${path.basename(file)}.${randomUUID()}.tmp`);
  try {
    await writeDurably(temporary, bytes);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  // The rename is durable only once the directory entry is flushed too.
  await flush(dir);
}

async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function flush(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function listAssets(assetDir: string): Promise<AssetRef[]> {
  const names = (await unlessMissing(readdir(assetDir))) ?? [];
  const refs = await Promise.all(names.map((name) => assetRefOf(assetDir, name)));
  return refs.filter((ref) => ref !== undefined);
}

/** The asset a directory entry holds, or undefined for other entries and files deleted meanwhile. */
async function assetRefOf(assetDir: string, name: string): Promise<AssetRef | undefined> {
  const digest = digestOfAssetName(name);
  if (digest === undefined) return undefined;
  const stats = await unlessMissing(stat(path.join(assetDir, name)));
  return stats?.isFile() ? { digest, size: stats.size } : undefined;
}

/** The result, or undefined when the file or directory it needs does not exist. */
async function unlessMissing<T>(operation: Promise<T>): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    if (isMissingFile(error)) return undefined;
    throw error;
  }
}

function isMissingFile(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
