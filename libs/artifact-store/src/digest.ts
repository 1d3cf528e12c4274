import { createHash } from 'node:crypto';

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const HEX = /^[a-f0-9]{64}$/;

/** The folder, relative to a store's root, that holds every asset; both backends lay assets out this way. */
export const ASSET_FOLDER = 'sha256';

/** "sha256:<64 lowercase hex>". */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The hex part of "sha256:<hex>"; throws, naming the value, on a malformed digest. */
export function digestHex(digest: string): string {
  const hex = DIGEST.exec(digest)?.[1];
  if (hex === undefined) {
    throw new Error(`invalid asset digest ${JSON.stringify(digest)}: expected "sha256:" followed by 64 lowercase hex digits`);
  }
  return hex;
}

/** The key of an asset relative to a store's root, "sha256/<hex>"; throws on a malformed digest. */
export function assetKey(digest: string): string {
  return `${ASSET_FOLDER}/${digestHex(digest)}`;
}

/** The digest named by a file or object in the asset folder, or undefined for anything else there. */
export function digestOfAssetName(name: string): string | undefined {
  return HEX.test(name) ? `sha256:${name}` : undefined;
}
