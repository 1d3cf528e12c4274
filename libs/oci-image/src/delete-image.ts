import type { RegistryClient } from './registry-client.ts';

/**
 * Deletes the image's manifest by digest (its blobs stay until the registry's garbage
 * collection). 'deleted', or 'absent' when it was already gone: deleting twice is fine.
 */
export async function deleteImage(registry: RegistryClient, repo: string, digest: string): Promise<'deleted' | 'absent'> {
  return (await registry.deleteManifest(repo, digest)) ? 'deleted' : 'absent';
}
