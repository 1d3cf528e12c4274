export { AssetCorruptError, AssetNotFoundError, type ArtifactStore, type AssetRef } from './artifact-store.ts';
export { digestHex, digestOf } from './digest.ts';
export { createFilesystemArtifactStore } from './filesystem.ts';
export { createS3ArtifactStore } from './s3.ts';
export { parseArtifactStoreConfig, type ArtifactStoreConfig } from './config.ts';
export { createArtifactStore, createS3Client } from './create.ts';
