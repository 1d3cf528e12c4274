import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { describeArtifactStoreContract } from './contract.testing.ts';
import { createFilesystemArtifactStore } from './index.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'kublambda-artifact-store-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** A directory that does not exist yet: the store creates it on the first put. */
function freshDir(): string {
  return path.join(root, randomUUID());
}

async function writeFileWithParents(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

describeArtifactStoreContract('filesystem artifact store', async () => {
  const dir = freshDir();
  return { store: createFilesystemArtifactStore({ dir }), writeRaw: (key, bytes) => writeFileWithParents(path.join(dir, key), bytes) };
});

describe('filesystem artifact store', () => {
  it('keeps each asset at <dir>/sha256/<hex> and leaves no temporary files behind', async () => {
    const dir = freshDir();
    const { digest } = await createFilesystemArtifactStore({ dir }).put(new TextEncoder().encode('export default 1'));
    expect(await readdir(dir, { recursive: true })).toEqual(['sha256', `sha256/${digest.slice('sha256:'.length)}`]);
  });

  it('wraps filesystem errors with the operation and the path', async () => {
    const file = path.join(freshDir(), 'a-file');
    await writeFileWithParents(file, new Uint8Array());
    const store = createFilesystemArtifactStore({ dir: file });
    await expect(store.put(new Uint8Array([1]))).rejects.toThrow(new RegExp(`^storing asset sha256:[a-f0-9]{64} at ${file}/sha256/[a-f0-9]{64}: ENOTDIR`));
    await expect(store.list()).rejects.toThrow(`listing assets in ${file}/sha256: ENOTDIR`);
  });
});
