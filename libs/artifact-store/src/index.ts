// Unfinished: the S3 (minio) and local-directory backends are not written yet.

/** A content-addressed store of executable assets: the key of an asset is its sha256. */
export interface ArtifactStore {
  /** Stores the bytes and returns their digest, "sha256:<hex>". Storing the same bytes twice is a no-op. */
  put(asset: Uint8Array): Promise<{ digest: string; size: number }>;
  /** Returns the bytes after checking they still hash to the digest. */
  get(digest: string): Promise<Uint8Array>;
  delete(digest: string): Promise<void>;
  list(): Promise<string[]>;
}
