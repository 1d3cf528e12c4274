import { createHash } from 'node:crypto';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The OCI content digest of some bytes: `sha256:<hex>`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(reference: string): boolean {
  return DIGEST.test(reference);
}
