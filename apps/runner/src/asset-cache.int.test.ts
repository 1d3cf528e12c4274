import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createS3ArtifactStore, type ArtifactStore } from '@kublambda/artifact-store';
import { startS3, type S3Server } from '@kublambda/dev-servers';
import { AssetCache } from './asset-cache.ts';

const BUCKET = 'assets';

let s3: S3Server;
let cacheDir: string;
beforeAll(async () => {
  s3 = await startS3({ bucket: BUCKET });
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-asset-cache-'));
});
afterAll(async () => {
  await s3?.stop();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

/** A store under a prefix of its own and a cache in a directory of its own, both empty. */
async function freshCache(): Promise<{ store: ArtifactStore; cache: AssetCache; dir: string }> {
  const store = createS3ArtifactStore({ client: s3.client(), bucket: BUCKET, prefix: `${randomUUID()}/` });
  const dir = path.join(cacheDir, randomUUID());
  const cache = new AssetCache({ dir, maxBytes: 1024 * 1024, store });
  await cache.init();
  return { store, cache, dir };
}

const moduleReturning = (n: number) => new TextEncoder().encode(`export default ${n};\n`);

describe('AssetCache over S3', () => {
  it('fetches assets from S3 into files that import as ES modules', async () => {
    const { store, cache } = await freshCache();
    const { digest } = await store.put(moduleReturning(42));
    const file = await cache.path(digest);
    expect((await import(pathToFileURL(file).href)).default).toBe(42);
  });

  it('rejects with context while S3 is down, still serving what it has, and fetches once S3 is back', async () => {
    const { store, cache, dir } = await freshCache();
    const [cached, uncached] = await Promise.all([1, 2].map((n) => store.put(moduleReturning(n))));
    const cachedFile = await cache.path(cached!.digest);

    await s3.pause();
    try {
      await expect(cache.path(uncached!.digest)).rejects.toThrow(new RegExp(`^fetching asset ${uncached!.digest}: reading asset .*ECONNREFUSED`));
      expect(await readdir(dir)).toEqual([path.basename(cachedFile)]);
      expect(await cache.path(cached!.digest)).toBe(cachedFile);
    } finally {
      await s3.start();
    }

    expect(await readFile(await cache.path(uncached!.digest))).toEqual(Buffer.from(moduleReturning(2)));
  }, 30_000);
});
