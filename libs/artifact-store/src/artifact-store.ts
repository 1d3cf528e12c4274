import { types } from 'node:util';
import { digestOf } from './digest.ts';

export interface AssetRef {
  /** "sha256:<64 hex>" */
  digest: string;
  size: number;
}

/** A content-addressed store of executable assets: the key of an asset is its sha256. */
export interface ArtifactStore {
  /** Stores bytes under their sha256; storing the same bytes again is a cheap no-op. */
  put(asset: Uint8Array): Promise<AssetRef>;
  /** The bytes, after checking they hash to the digest; AssetNotFoundError / AssetCorruptError otherwise. */
  get(digest: string): Promise<Uint8Array>;
  has(digest: string): Promise<boolean>;
  /** Idempotent: deleting a missing asset is fine. */
  delete(digest: string): Promise<void>;
  list(): Promise<AssetRef[]>;
}

export class AssetNotFoundError extends Error {
  readonly digest: string;

  constructor(digest: string, location: string) {
    super(`asset ${digest} not found at ${location}`);
    this.name = 'AssetNotFoundError';
    this.digest = digest;
  }
}

export class AssetCorruptError extends Error {
  readonly digest: string;
  readonly actualDigest: string;

  constructor(digest: string, actualDigest: string, location: string) {
    super(`asset ${digest} at ${location} is corrupt: its bytes hash to ${actualDigest}`);
    this.name = 'AssetCorruptError';
    this.digest = digest;
    this.actualDigest = actualDigest;
  }
}

/** The bytes read for `digest`, or AssetCorruptError when they no longer hash to it. */
export function verified(digest: string, bytes: Uint8Array, location: string): Uint8Array {
  const actualDigest = digestOf(bytes);
  if (actualDigest !== digest) throw new AssetCorruptError(digest, actualDigest, location);
  return bytes;
}

/** A backend failure with what the store was doing and where; the original stays as the cause. */
export function failure(context: string, cause: unknown): Error {
  return new Error(`${context}: ${reasonOf(cause)}`, { cause });
}

function reasonOf(cause: unknown): string {
  // isNativeError rather than instanceof: under Jest, Node's own errors come from another realm.
  if (!types.isNativeError(cause)) return String(cause);
  // Node reports some connection failures as an AggregateError with an empty message.
  return cause.message || (cause as NodeJS.ErrnoException).code || cause.name;
}
