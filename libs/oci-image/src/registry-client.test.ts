import { describe, expect, it } from '@jest/globals';
import { RegistryClient, RegistryError, uploadUrlWithDigest } from './registry-client.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('uploadUrlWithDigest', () => {
  it.each([
    // distribution 2.8: absolute, with signed state in the query, kept byte for byte
    [
      'http://127.0.0.1:5000/v2/a/b/blobs/uploads/0f3c?_state=ab%2Bc%3D%3D&x=1',
      'http://127.0.0.1:5000/v2/a/b/blobs/uploads/0f3c?_state=ab%2Bc%3D%3D&x=1&digest=sha256%3A' + 'a'.repeat(64),
    ],
    ['/v2/a/blobs/uploads/0f3c', 'http://127.0.0.1:5000/v2/a/blobs/uploads/0f3c?digest=sha256%3A' + 'a'.repeat(64)],
    ['/v2/a/blobs/uploads/0f3c?', 'http://127.0.0.1:5000/v2/a/blobs/uploads/0f3c?digest=sha256%3A' + 'a'.repeat(64)],
    ['/v2/a/blobs/uploads/0f3c?_state=a+b', 'http://127.0.0.1:5000/v2/a/blobs/uploads/0f3c?_state=a+b&digest=sha256%3A' + 'a'.repeat(64)],
  ])('%s', (location, expected) => {
    expect(uploadUrlWithDigest(location, 'http://127.0.0.1:5000', DIGEST).href).toBe(expected);
  });
});

describe('RegistryClient', () => {
  it('refuses plain http unless insecure, and a URL with a path', () => {
    expect(() => new RegistryClient({ url: 'http://127.0.0.1:5000' })).toThrow(/needs insecure: true/);
    expect(() => new RegistryClient({ url: 'http://127.0.0.1:5000', insecure: true })).not.toThrow();
    expect(() => new RegistryClient({ url: 'https://r.example/v2/' })).toThrow(/without a path/);
    expect(new RegistryClient({ url: 'https://r.example:8443' }).host).toBe('r.example:8443');
  });

  it('refuses bad repository names, tags and digests before sending anything', async () => {
    const calls: string[] = [];
    const client = new RegistryClient({ url: 'https://r.example', fetch: async (url) => (calls.push(String(url)), new Response(null, { status: 500 })) });
    await expect(client.headBlob('a/../b', DIGEST)).rejects.toThrow(/not a valid repository name/);
    await expect(client.headBlob('a', 'latest')).rejects.toThrow(/not a valid sha256 digest/);
    await expect(client.getManifest('a', 'bad/tag')).rejects.toThrow(/not a valid tag or digest/);
    await expect(client.deleteManifest('a', 'latest')).rejects.toThrow(/not a valid sha256 digest/);
    expect(calls).toEqual([]);
  });

  it('names the registry, operation, repository, reference, status and body in errors', async () => {
    const client = new RegistryClient({
      url: 'https://r.example',
      fetch: async () => new Response('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}', { status: 403 }),
    });
    const error = (await client.putManifest('team/app', 'v1', Buffer.from('{}'), 'application/json').catch((e: unknown) => e)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toBe(
      'registry r.example: putManifest team/app:v1: HTTP 403: expected 201 ({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})',
    );
    expect([error.operation, error.repo, error.reference, error.status]).toEqual(['putManifest', 'team/app', 'v1', 403]);
  });

  it('wraps network failures with the same context', async () => {
    const client = new RegistryClient({ url: 'https://r.example', fetch: async () => Promise.reject(new TypeError('fetch failed')) });
    await expect(client.headBlob('a', DIGEST)).rejects.toThrow(`registry r.example: headBlob a@${DIGEST}: HEAD failed: fetch failed`);
  });

  it('does not send credentials to an upload Location on another origin', async () => {
    const seen: string[] = [];
    const client = new RegistryClient({
      url: 'https://r.example',
      username: 'u',
      password: 'p',
      fetch: async (url) => {
        seen.push(String(url));
        return new Response(null, { status: 202, headers: { location: 'https://evil.example/upload?x=1' } });
      },
    });
    await expect(client.pushBlob('a', DIGEST, Buffer.from('x'))).rejects.toThrow(/points to another origin: https:\/\/evil.example/);
    expect(seen).toEqual(['https://r.example/v2/a/blobs/uploads/']);
  });

  it('checks the bytes of a blob against its digest', async () => {
    const client = new RegistryClient({ url: 'https://r.example', fetch: async () => new Response('not it', { status: 200 }) });
    await expect(client.getBlob('a', DIGEST)).rejects.toThrow(/the bytes received have digest sha256:/);
  });
});
