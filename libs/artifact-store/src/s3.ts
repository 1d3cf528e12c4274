import { buffer } from 'node:stream/consumers';
import type * as Minio from 'minio';
import { AssetNotFoundError, failure, verified, type ArtifactStore, type AssetRef } from './artifact-store.ts';
import { ASSET_FOLDER, assetKey, digestOf, digestOfAssetName } from './digest.ts';

export const DEFAULT_PREFIX = 'assets/';

/**
 * Assets as objects `<prefix>sha256/<hex>` in a bucket that already exists. `put` skips the
 * upload when an object of the same size is there already, so a truncated copy gets replaced.
 */
export function createS3ArtifactStore(options: { client: Minio.Client; bucket: string; prefix?: string }): ArtifactStore {
  const { client, bucket } = options;
  const prefix = asKeyPrefix(options.prefix ?? DEFAULT_PREFIX);
  const assetFolder = `${prefix}${ASSET_FOLDER}/`;
  const keyOf = (digest: string) => `${prefix}${assetKey(digest)}`;
  const urlOf = (key: string) => `s3://${bucket}/${key}`;

  return {
    async put(asset) {
      const ref = { digest: digestOf(asset), size: asset.byteLength };
      const key = keyOf(ref.digest);
      try {
        if ((await sizeOf(client, bucket, key)) !== ref.size) {
          await client.putObject(bucket, key, Buffer.from(asset.buffer, asset.byteOffset, asset.byteLength));
        }
      } catch (cause) {
        throw failure(`storing asset ${ref.digest} at ${urlOf(key)}`, cause);
      }
      return ref;
    },

    async get(digest) {
      const key = keyOf(digest);
      let bytes: Uint8Array;
      try {
        bytes = await buffer(await client.getObject(bucket, key));
      } catch (cause) {
        if (isMissingObject(cause)) throw new AssetNotFoundError(digest, urlOf(key));
        throw failure(`reading asset ${digest} from ${urlOf(key)}`, cause);
      }
      return verified(digest, bytes, urlOf(key));
    },

    async has(digest) {
      const key = keyOf(digest);
      try {
        return (await sizeOf(client, bucket, key)) !== undefined;
      } catch (cause) {
        throw failure(`checking for asset ${digest} at ${urlOf(key)}`, cause);
      }
    },

    async delete(digest) {
      const key = keyOf(digest);
      try {
        // S3 answers a delete of a missing object with success too.
        await client.removeObject(bucket, key);
      } catch (cause) {
        throw failure(`deleting asset ${digest} at ${urlOf(key)}`, cause);
      }
    },

    async list() {
      try {
        return await listAssets(client, bucket, assetFolder);
      } catch (cause) {
        throw failure(`listing assets in ${urlOf(assetFolder)}`, cause);
      }
    },
  };
}

/** Creates the bucket unless it exists. */
export async function ensureBucket(client: Minio.Client, bucket: string, region: string): Promise<void> {
  try {
    if (!(await client.bucketExists(bucket))) await client.makeBucket(bucket, region);
  } catch (cause) {
    // Another replica starting at the same time created it first.
    if (errorCode(cause) === 'BucketAlreadyOwnedByYou') return;
    throw failure(`making sure bucket s3://${bucket} exists`, cause);
  }
}

/** A non-empty prefix ends with "/", so "lambdas" and "lambdas/" name the same folder. */
export function asKeyPrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** The size of an object, or undefined when there is none. */
async function sizeOf(client: Minio.Client, bucket: string, key: string): Promise<number | undefined> {
  try {
    return (await client.statObject(bucket, key)).size;
  } catch (error) {
    if (isMissingObject(error)) return undefined;
    throw error;
  }
}

async function listAssets(client: Minio.Client, bucket: string, assetFolder: string): Promise<AssetRef[]> {
  const refs: AssetRef[] = [];
  for await (const item of client.listObjectsV2(bucket, assetFolder, true)) {
    const digest = item.name === undefined ? undefined : digestOfAssetName(item.name.slice(assetFolder.length));
    if (digest !== undefined) refs.push({ digest, size: item.size });
  }
  return refs;
}

/** HEAD answers a missing object with NotFound (it has no body to say more), GET with NoSuchKey. */
function isMissingObject(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'NotFound' || code === 'NoSuchKey';
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}
