import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { AssetCorruptError, AssetNotFoundError, digestOf, type ArtifactStore } from './index.ts';

export interface ContractSubject {
  /** A store with nothing in it yet. */
  store: ArtifactStore;
  /** Writes raw bytes under a key relative to the store's root (assets live at "sha256/<hex>"), bypassing the store. */
  writeRaw(key: string, bytes: Uint8Array): Promise<void>;
}

const MALFORMED_DIGESTS = [
  '',
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855',
  'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85',
  'sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'sha256:../../etc/passwd',
];

/** The behaviour every ArtifactStore backend shares; `makeSubject` runs before each test. */
export function describeArtifactStoreContract(name: string, makeSubject: () => Promise<ContractSubject>): void {
  describe(`${name} (ArtifactStore contract)`, () => {
    let subject: ContractSubject;
    let store: ArtifactStore;
    beforeEach(async () => {
      subject = await makeSubject();
      store = subject.store;
    });

    it.each([0, 1, 1 << 20])('round-trips an asset of %i bytes', async (size) => {
      const asset = randomBytes(size);
      const ref = await store.put(asset);
      expect(ref).toEqual({ digest: digestOf(asset), size });
      expect(await store.has(ref.digest)).toBe(true);
      expect(Buffer.from(await store.get(ref.digest))).toEqual(asset);
      expect(await store.list()).toEqual([ref]);
    });

    it('stores a view into a larger buffer as just the viewed bytes', async () => {
      const view = new TextEncoder().encode('..export default 1..').subarray(2, -2);
      const ref = await store.put(view);
      expect(ref).toEqual({ digest: digestOf(view), size: view.byteLength });
      expect(new TextDecoder().decode(await store.get(ref.digest))).toBe('export default 1');
    });

    it('keeps one copy of bytes put again, in sequence or at once', async () => {
      const asset = randomBytes(4096);
      const first = await store.put(asset);
      const concurrent = await Promise.all([1, 2, 3, 4].map(() => store.put(asset)));
      expect(concurrent).toEqual([first, first, first, first]);
      expect(await store.list()).toEqual([first]);
      expect(Buffer.from(await store.get(first.digest))).toEqual(asset);
    });

    it('lists every asset once, with its size', async () => {
      const refs = await Promise.all(['a', 'bb', 'ccc'].map((text) => store.put(new TextEncoder().encode(text))));
      expect(sortedByDigest(await store.list())).toEqual(sortedByDigest(refs));
    });

    it('reports a missing asset as AssetNotFoundError naming the digest', async () => {
      const digest = digestOf(randomBytes(16));
      expect(await store.has(digest)).toBe(false);
      await expect(store.get(digest)).rejects.toThrow(AssetNotFoundError);
      await expect(store.get(digest)).rejects.toMatchObject({ digest, message: expect.stringContaining(digest) });
    });

    it('deletes idempotently, including assets it never had', async () => {
      const ref = await store.put(randomBytes(64));
      await store.delete(ref.digest);
      expect(await store.has(ref.digest)).toBe(false);
      await expect(store.get(ref.digest)).rejects.toThrow(AssetNotFoundError);
      expect(await store.list()).toEqual([]);
      await expect(store.delete(ref.digest)).resolves.toBeUndefined();
      await expect(store.delete(digestOf(randomBytes(16)))).resolves.toBeUndefined();
    });

    it('refuses bytes that changed after they were stored, with AssetCorruptError', async () => {
      const ref = await store.put(new TextEncoder().encode('export default () => "original"'));
      const tampered = new TextEncoder().encode('export default () => "tampered"');
      await subject.writeRaw(keyOf(ref.digest), tampered);
      const error = await store.get(ref.digest).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AssetCorruptError);
      expect(error).toMatchObject({ digest: ref.digest, actualDigest: digestOf(tampered) });
    });

    it('replaces a truncated copy when the asset is put again', async () => {
      const asset = randomBytes(256);
      const ref = await store.put(asset);
      await subject.writeRaw(keyOf(ref.digest), asset.subarray(0, 100));
      await expect(store.get(ref.digest)).rejects.toThrow(AssetCorruptError);
      expect(await store.put(asset)).toEqual(ref);
      expect(Buffer.from(await store.get(ref.digest))).toEqual(asset);
    });

    it('lists only well-formed asset keys', async () => {
      const ref = await store.put(randomBytes(32));
      const hex = digestOf(randomBytes(8)).slice('sha256:'.length);
      const strays = [`sha256/${hex}.tmp`, `sha256/.${hex}.tmp`, `sha256/${hex.toUpperCase()}`, `sha256/${hex.slice(1)}`, `sha256/${hex}/${hex}`, `sha512/${hex}`, hex];
      await Promise.all(strays.map((key) => subject.writeRaw(key, randomBytes(8))));
      expect(await store.list()).toEqual([ref]);
    });

    describe.each(MALFORMED_DIGESTS)('refuses the malformed digest %j', (digest) => {
      const refused = expect.objectContaining({ message: expect.stringContaining(`invalid asset digest ${JSON.stringify(digest)}`) });
      it('in get, has and delete', async () => {
        await expect(store.get(digest)).rejects.toEqual(refused);
        await expect(store.has(digest)).rejects.toEqual(refused);
        await expect(store.delete(digest)).rejects.toEqual(refused);
      });
    });
  });
}

function keyOf(digest: string): string {
  return `sha256/${digest.slice('sha256:'.length)}`;
}

function sortedByDigest<T extends { digest: string }>(refs: T[]): T[] {
  return refs.toSorted((a, b) => a.digest.localeCompare(b.digest));
}
