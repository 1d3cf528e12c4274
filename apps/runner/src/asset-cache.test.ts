import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AssetCorruptError, AssetNotFoundError, createFilesystemArtifactStore, digestOf, type ArtifactStore } from '@kublambda/artifact-store';
import { AssetCache } from './asset-cache.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'kublambda-asset-cache-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

/** The same length for every n below 10, so sizes in a test are multiples of one asset. */
const moduleReturning = (n: number) => new TextEncoder().encode(`export default ${n};\n`);
const ASSET_SIZE = moduleReturning(0).byteLength;
const hexOf = (digest: string) => digest.slice('sha256:'.length);

interface Fixture {
  cache: AssetCache;
  cacheDir: string;
  store: ArtifactStore;
  storeDir: string;
  /** The digests asked of the store, in order. */
  storeReads: string[];
  /** Puts the bytes in the store and returns their digest. */
  stored(bytes: Uint8Array): Promise<string>;
  /** A second cache over the same directory and store, as after a restart; initialised. */
  restarted(maxBytes?: number): Promise<AssetCache>;
}

async function fixture(options: { maxBytes?: number } = {}): Promise<Fixture> {
  const storeDir = path.join(root, 'store');
  const cacheDir = path.join(root, 'cache');
  const store = createFilesystemArtifactStore({ dir: storeDir });
  const storeReads: string[] = [];
  const counted = {
    get: (digest: string) => {
      storeReads.push(digest);
      return store.get(digest);
    },
  };
  const open = async (maxBytes = options.maxBytes ?? 1024 * 1024) => {
    const cache = new AssetCache({ dir: cacheDir, maxBytes, store: counted });
    await cache.init();
    return cache;
  };
  return {
    cache: await open(),
    cacheDir,
    store,
    storeDir,
    storeReads,
    stored: async (bytes) => (await store.put(bytes)).digest,
    restarted: open,
  };
}

/** Ages a cached file, so a restarted cache ranks it by this time. */
async function setCachedAt(cacheDir: string, digest: string, seconds: number): Promise<void> {
  await utimes(path.join(cacheDir, `${hexOf(digest)}.mjs`), seconds, seconds);
}

describe('AssetCache', () => {
  it('fetches an asset once into a read-only <hex>.mjs file and serves it from disk afterwards', async () => {
    const { cache, cacheDir, stored, storeReads } = await fixture();
    const asset = moduleReturning(1);
    const digest = await stored(asset);

    const file = await cache.path(digest);
    expect(file).toBe(path.join(cacheDir, `${hexOf(digest)}.mjs`));
    expect(path.isAbsolute(file)).toBe(true);
    expect(await readFile(file)).toEqual(Buffer.from(asset));
    expect((await stat(file)).mode & 0o777).toBe(0o444);

    expect(await cache.path(digest)).toBe(file);
    expect(storeReads).toEqual([digest]);
    expect(cache.entries()).toEqual([digest]);
    expect(cache.size).toBe(asset.byteLength);
  });

  it('writes files with mode 0o444 whatever the umask', async () => {
    const { cache, stored } = await fixture();
    const digest = await stored(moduleReturning(1));
    const umask = process.umask(0o077);
    try {
      expect((await stat(await cache.path(digest))).mode & 0o777).toBe(0o444);
    } finally {
      process.umask(umask);
    }
  });

  it('serves a file that imports as an ES module', async () => {
    const { cache, stored } = await fixture();
    const file = await cache.path(await stored(new TextEncoder().encode('export default 42')));
    expect((await import(pathToFileURL(file).href)).default).toBe(42);
  });

  it('shares one store read among concurrent requests for an asset and leaves no temporary files', async () => {
    const { cache, cacheDir, stored, storeReads } = await fixture();
    const digest = await stored(moduleReturning(1));

    const files = await Promise.all(Array.from({ length: 5 }, () => cache.path(digest)));
    expect(new Set(files).size).toBe(1);
    expect(storeReads).toEqual([digest]);
    expect(await readdir(cacheDir)).toEqual([`${hexOf(digest)}.mjs`]);
  });

  it('evicts the least recently used assets once over maxBytes, deleting their files', async () => {
    const { cache, cacheDir, stored, storeReads } = await fixture({ maxBytes: 2 * ASSET_SIZE });
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => stored(moduleReturning(n))));
    await cache.path(a!);
    await cache.path(b!);
    expect(cache.entries()).toEqual([a, b]);
    await cache.path(a!);
    expect(cache.entries()).toEqual([b, a]);

    await cache.path(c!);
    expect(cache.entries()).toEqual([a, c]);
    expect(cache.size).toBe(2 * ASSET_SIZE);
    expect((await readdir(cacheDir)).sort()).toEqual([a!, c!].map((digest) => `${hexOf(digest)}.mjs`).sort());

    storeReads.length = 0;
    await cache.path(b!);
    expect(storeReads).toEqual([b]);
    expect(cache.entries()).toEqual([c, b]);
  });

  it('keeps its files and its accounting in step under concurrent misses and evictions', async () => {
    const { cache, cacheDir, stored } = await fixture({ maxBytes: 2 * ASSET_SIZE });
    const digests = await Promise.all([1, 2, 3, 4, 5].map((n) => stored(moduleReturning(n))));
    for (let round = 0; round < 20; round++) {
      await Promise.all(digests.map((_, i) => cache.path(digests[(i * round) % digests.length]!)));
    }
    const files = (await readdir(cacheDir)).sort();
    expect(files).toEqual(cache.entries().map((digest) => `${hexOf(digest)}.mjs`).sort());
    expect(cache.size).toBe(files.length * ASSET_SIZE);
  });

  it('never evicts a pinned asset, and evicts it after the last unpin', async () => {
    const { cache, stored } = await fixture({ maxBytes: 2 * ASSET_SIZE });
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map((n) => stored(moduleReturning(n))));
    const unpinA = cache.pin(a!);
    const unpinB = cache.pin(b!);
    const unpinBAgain = cache.pin(b!);
    await cache.path(a!);
    await cache.path(b!);

    await cache.path(c!);
    expect(cache.entries()).toEqual([a, b, c]);
    expect(cache.size).toBe(3 * ASSET_SIZE);

    unpinA();
    // Unpinning twice does not take back the other pin on b.
    unpinB();
    unpinB();
    await cache.path(d!);
    expect(cache.entries()).toEqual([b, d]);
    expect(cache.size).toBe(2 * ASSET_SIZE);

    unpinBAgain();
    await cache.path(a!);
    expect(cache.entries()).toEqual([d, a]);
  });

  it('serves an asset bigger than maxBytes, until the next one evicts it', async () => {
    const { cache, stored } = await fixture({ maxBytes: ASSET_SIZE });
    const big = new TextEncoder().encode(`export default ${JSON.stringify('x'.repeat(10 * ASSET_SIZE))};`);
    const [bigDigest, small] = await Promise.all([stored(big), stored(moduleReturning(1))]);

    expect(await readFile(await cache.path(bigDigest))).toEqual(Buffer.from(big));
    expect(cache.entries()).toEqual([bigDigest]);
    expect(cache.size).toBe(big.byteLength);

    await cache.path(small);
    expect(cache.entries()).toEqual([small]);
  });

  describe('init', () => {
    it('keeps intact cached files in the order of their times and deletes everything else', async () => {
      const { cache, cacheDir, stored, storeReads, restarted } = await fixture();
      const [older, newer] = await Promise.all([1, 2].map((n) => stored(moduleReturning(n))));
      await cache.path(newer!);
      await cache.path(older!);
      await setCachedAt(cacheDir, older!, 1_000);
      await setCachedAt(cacheDir, newer!, 2_000);
      const corrupt = digestOf(moduleReturning(3));
      await writeFile(path.join(cacheDir, `${hexOf(corrupt)}.mjs`), moduleReturning(4));
      await writeFile(path.join(cacheDir, `${hexOf(corrupt)}.mjs.${randomUUID()}.tmp`), moduleReturning(3).subarray(0, 5));
      await writeFile(path.join(cacheDir, 'notes.txt'), 'stray');
      await writeFile(path.join(cacheDir, hexOf(corrupt)), moduleReturning(3));
      await mkdir(path.join(cacheDir, `${hexOf(digestOf(new Uint8Array()))}.mjs`));

      const reopened = await restarted();
      expect(reopened.entries()).toEqual([older, newer]);
      expect(reopened.size).toBe(2 * ASSET_SIZE);
      expect((await readdir(cacheDir)).sort()).toEqual([older!, newer!].map((digest) => `${hexOf(digest)}.mjs`).sort());

      storeReads.length = 0;
      await reopened.path(older!);
      expect(storeReads).toEqual([]);
    });

    it('evicts the oldest cached files down to maxBytes', async () => {
      const { cache, cacheDir, stored, restarted } = await fixture();
      const digests = await Promise.all([1, 2, 3].map((n) => stored(moduleReturning(n))));
      for (const [age, digest] of digests.entries()) {
        await cache.path(digest);
        await setCachedAt(cacheDir, digest, 1_000 + age);
      }

      const reopened = await restarted(2 * ASSET_SIZE);
      expect(reopened.entries()).toEqual(digests.slice(1));
      expect(await readdir(cacheDir)).not.toContain(`${hexOf(digests[0]!)}.mjs`);
    });

    it('creates a missing directory', async () => {
      const cache = new AssetCache({ dir: path.join(root, 'a', 'b'), maxBytes: 1, store: createFilesystemArtifactStore({ dir: root }) });
      await cache.init();
      expect(await readdir(path.join(root, 'a', 'b'))).toEqual([]);
    });
  });

  it('rejects a missing asset with the AssetNotFoundError as the cause, writes nothing, and fetches it once it exists', async () => {
    const { cache, cacheDir, store } = await fixture();
    const asset = moduleReturning(1);
    const digest = digestOf(asset);

    await expect(cache.path(digest)).rejects.toEqual(
      expect.objectContaining({ message: expect.stringMatching(`^fetching asset ${digest}: asset ${digest} not found at `), cause: expect.any(AssetNotFoundError) }),
    );
    expect(await readdir(cacheDir)).toEqual([]);
    expect(cache.entries()).toEqual([]);

    await store.put(asset);
    expect(await readFile(await cache.path(digest))).toEqual(Buffer.from(asset));
  });

  it('rejects an asset the store holds corrupt, writing nothing', async () => {
    const { cache, cacheDir, storeDir } = await fixture();
    const digest = digestOf(moduleReturning(1));
    await mkdir(path.join(storeDir, 'sha256'), { recursive: true });
    await writeFile(path.join(storeDir, 'sha256', hexOf(digest)), moduleReturning(2));

    await expect(cache.path(digest)).rejects.toEqual(
      expect.objectContaining({ message: expect.stringMatching(`^fetching asset ${digest}: asset ${digest} at .* is corrupt`), cause: expect.any(AssetCorruptError) }),
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it.each(['', 'sha256:nope', `sha256:${'A'.repeat(64)}`, `sha512:${'a'.repeat(64)}`, `sha256:../${'a'.repeat(61)}`])(
    'refuses the malformed digest %j without asking the store',
    async (digest) => {
      const { cache, storeReads } = await fixture();
      const naming = `invalid asset digest ${JSON.stringify(digest)}`;
      await expect(cache.path(digest)).rejects.toThrow(naming);
      expect(() => cache.pin(digest)).toThrow(naming);
      expect(storeReads).toEqual([]);
    },
  );
});
