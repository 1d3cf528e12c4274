import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { types } from 'node:util';
import { digestHex, digestOf, type ArtifactStore } from '@kublambda/artifact-store';

export interface AssetCacheOptions {
  dir: string;
  maxBytes: number;
  store: Pick<ArtifactStore, 'get'>;
}

const CACHED_FILE = /^([a-f0-9]{64})\.mjs$/;
const READ_ONLY = 0o444;

interface CachedFile {
  digest: string;
  size: number;
  cachedAtMs: number;
}

/**
 * Assets from the artifact store as read-only files `<dir>/<hex>.mjs`, which worker processes
 * import as ES modules; least recently used first out once the files exceed `maxBytes`.
 * Call `init()` once before anything else. Pin an asset before asking for its path when a
 * worker is going to load it, so an eviction in between cannot delete the file.
 */
export class AssetCache {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #store: Pick<ArtifactStore, 'get'>;
  /** Sizes of the cached assets; the Map's order is recency, least recently used first. */
  readonly #sizes = new Map<string, number>();
  #size = 0;
  readonly #pins = new Map<string, number>();
  readonly #loads = new Map<string, Promise<string>>();

  constructor(options: AssetCacheOptions) {
    this.#dir = path.resolve(options.dir);
    this.#maxBytes = options.maxBytes;
    this.#store = options.store;
  }

  get size(): number {
    return this.#size;
  }

  entries(): string[] {
    return [...this.#sizes.keys()];
  }

  async init(): Promise<void> {
    let kept: CachedFile[];
    try {
      kept = await this.#scan();
    } catch (cause) {
      throw withContext(`scanning asset cache ${this.#dir}`, cause);
    }
    this.#sizes.clear();
    this.#size = 0;
    // File times are the best record of recency a restart leaves.
    for (const file of kept.sort((a, b) => a.cachedAtMs - b.cachedAtMs)) this.#add(file.digest, file.size);
    this.#evict();
  }

  async path(digest: string): Promise<string> {
    const file = this.#fileOf(digest);
    const size = this.#sizes.get(digest);
    if (size === undefined) return this.#loadOnce(digest, file);
    this.#markUsed(digest, size);
    return file;
  }

  pin(digest: string): () => void {
    digestHex(digest); // refuses a malformed digest, as path() does
    this.#pins.set(digest, (this.#pins.get(digest) ?? 0) + 1);
    let pinned = true;
    return () => {
      if (!pinned) return;
      pinned = false;
      this.#unpin(digest);
    };
  }

  /** Every entry of the directory checked: cached assets kept (in no particular order), anything else deleted. */
  async #scan(): Promise<CachedFile[]> {
    await mkdir(this.#dir, { recursive: true });
    const kept: CachedFile[] = [];
    // One file at a time, so a large cache is never all in memory at once.
    for (const name of await readdir(this.#dir)) {
      const file = path.join(this.#dir, name);
      const cached = await verifiedCachedFile(file, name);
      if (cached === undefined) await rm(file, { recursive: true, force: true });
      else kept.push(cached);
    }
    return kept;
  }

  #loadOnce(digest: string, file: string): Promise<string> {
    let load = this.#loads.get(digest);
    if (load === undefined) {
      load = this.#load(digest, file).finally(() => this.#loads.delete(digest));
      this.#loads.set(digest, load);
    }
    return load;
  }

  async #load(digest: string, file: string): Promise<string> {
    const bytes = await this.#fetch(digest);
    try {
      await writeReadOnlyAtomically(file, bytes);
    } catch (cause) {
      throw withContext(`caching asset ${digest} at ${file}`, cause);
    }
    this.#add(digest, bytes.byteLength);
    this.#evict(digest);
    return file;
  }

  async #fetch(digest: string): Promise<Uint8Array> {
    try {
      return await this.#store.get(digest);
    } catch (cause) {
      throw withContext(`fetching asset ${digest}`, cause);
    }
  }

  /**
   * Evicts least recently used assets until the cache fits, sparing pinned ones and `keep`.
   * Deletes synchronously: a load of an asset being evicted could otherwise rename its fresh
   * file into place before an asynchronous deletion of the old one, and lose it.
   */
  #evict(keep?: string): void {
    for (const [digest, size] of this.#victims(keep)) {
      this.#forget(digest, size);
      this.#deleteFile(digest);
    }
  }

  #victims(keep: string | undefined): [digest: string, size: number][] {
    const victims: [string, number][] = [];
    let excess = this.#size - this.#maxBytes;
    for (const [digest, size] of this.#sizes) {
      if (excess <= 0) break;
      if (digest === keep || this.#pins.has(digest)) continue;
      victims.push([digest, size]);
      excess -= size;
    }
    return victims;
  }

  #deleteFile(digest: string): void {
    const file = this.#fileOf(digest);
    try {
      rmSync(file, { force: true });
    } catch (cause) {
      throw withContext(`evicting asset ${digest} from ${file}`, cause);
    }
  }

  #add(digest: string, size: number): void {
    this.#sizes.set(digest, size);
    this.#size += size;
  }

  #forget(digest: string, size: number): void {
    this.#sizes.delete(digest);
    this.#size -= size;
  }

  #markUsed(digest: string, size: number): void {
    this.#sizes.delete(digest);
    this.#sizes.set(digest, size);
  }

  #unpin(digest: string): void {
    const count = (this.#pins.get(digest) ?? 0) - 1;
    if (count > 0) this.#pins.set(digest, count);
    else this.#pins.delete(digest);
  }

  #fileOf(digest: string): string {
    return path.join(this.#dir, `${digestHex(digest)}.mjs`);
  }
}

/** The asset a directory entry holds, or undefined when it is not a file named for the digest of its content. */
async function verifiedCachedFile(file: string, name: string): Promise<CachedFile | undefined> {
  const hex = CACHED_FILE.exec(name)?.[1];
  if (hex === undefined) return undefined;
  const stats = await stat(file);
  if (!stats.isFile()) return undefined;
  const digest = `sha256:${hex}`;
  const bytes = await readFile(file);
  return digestOf(bytes) === digest ? { digest, size: bytes.byteLength, cachedAtMs: stats.mtimeMs } : undefined;
}

/**
 * A temporary file renamed into place, so a worker never imports a partial file; a crash
 * leaves only a temporary, whose name `init` does not keep.
 */
async function writeReadOnlyAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, bytes, { flag: 'wx', mode: READ_ONLY });
    // The mode given at creation passes through the umask.
    await chmod(temporary, READ_ONLY);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function withContext(context: string, cause: unknown): Error {
  // isNativeError rather than instanceof: under Jest, Node's own errors come from another realm.
  const reason = types.isNativeError(cause) ? cause.message : String(cause);
  return new Error(`${context}: ${reason}`, { cause });
}
