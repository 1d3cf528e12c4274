// Each test starts its own real server on a free loopback port and stops it.
import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import * as Minio from 'minio';
import { portAcceptsConnections, startRedis, startRegistry, startS3, type OciRegistry } from './index.ts';

async function expectStoppedAndRemoved(port: number, dir: string): Promise<void> {
  expect(await portAcceptsConnections(port)).toBe(false);
  await expect(access(dir)).rejects.toMatchObject({ code: 'ENOENT' });
}

async function withRedisClient<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

describe('startRedis', () => {
  it('serves a Redis set up for BullMQ, and stops completely', async () => {
    const redis = await startRedis();
    try {
      await withRedisClient(redis.adminUrl, async (client) => {
        await client.set('greeting', 'hello');
        expect(await client.get('greeting')).toBe('hello');
        expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
        expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      });
    } finally {
      await redis.stop();
      await redis.stop();
    }
    await expectStoppedAndRemoved(redis.port, redis.dir);
  });

  it('keeps data across a restart with append-only persistence', async () => {
    const redis = await startRedis({ appendOnly: true });
    try {
      await withRedisClient(redis.adminUrl, async (client) => {
        await client.incrby('visits', 41);
        await client.incr('visits');
      });
      await redis.restart();
      await withRedisClient(redis.adminUrl, async (client) => expect(await client.get('visits')).toBe('42'));
    } finally {
      await redis.stop();
    }
  });

  it('loses data across a restart without persistence', async () => {
    const redis = await startRedis();
    try {
      await withRedisClient(redis.adminUrl, (client) => client.set('k', 'v'));
      await redis.restart();
      await withRedisClient(redis.adminUrl, async (client) => expect(await client.get('k')).toBeNull());
    } finally {
      await redis.stop();
    }
  });

  it('fails to start with the server log in the error, and leaves a given directory alone', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-redis-test-'));
    try {
      await mkdir(path.join(dir, 'appendonlydir'));
      await writeFile(path.join(dir, 'appendonlydir', 'appendonly.aof.manifest'), 'not a manifest\n');
      await expect(startRedis({ dir, appendOnly: true })).rejects.toThrow(
        /^redis-server exited during start-up \(code 1[\s\S]*Invalid AOF manifest file format/,
      );
      await access(path.join(dir, 'redis.log'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('startS3', () => {
  it('stores, lists and removes objects, and refuses bad credentials', async () => {
    const s3 = await startS3({ bucket: 'artifacts' });
    try {
      const client = s3.client();
      expect(await client.bucketExists('artifacts')).toBe(true);
      expect(await client.bucketExists('other')).toBe(false);

      const bytes = randomBytes(256 * 1024);
      await client.putObject('artifacts', 'sha256/abc', bytes, bytes.length, { 'Content-Type': 'application/octet-stream' });
      const chunks: Buffer[] = [];
      for await (const chunk of await client.getObject('artifacts', 'sha256/abc')) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);

      const listed: string[] = [];
      for await (const item of client.listObjectsV2('artifacts', 'sha256/', true)) listed.push((item as { name: string }).name);
      expect(listed).toEqual(['sha256/abc']);

      await s3.pause();
      expect(await portAcceptsConnections(s3.port)).toBe(false);
      await s3.start();
      expect(await client.statObject('artifacts', 'sha256/abc')).toMatchObject({ size: bytes.length });

      await client.removeObject('artifacts', 'sha256/abc');
      await expect(client.statObject('artifacts', 'sha256/abc')).rejects.toMatchObject({ code: 'NotFound' });

      const intruder = new Minio.Client({ endPoint: s3.endPoint, port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: 'wrong-secret', region: s3.region });
      await expect(intruder.bucketExists('artifacts')).rejects.toThrow();
      await expect(intruder.listBuckets()).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    } finally {
      await s3.stop();
      await s3.stop();
    }
    await expectStoppedAndRemoved(s3.port, s3.dir);
  });
});

describe('startRegistry', () => {
  const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

  /** fetch as the registry's user. */
  const fetchAs = (registry: OciRegistry, url: string | URL, init: RequestInit = {}) =>
    fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: registry.authorization } });

  async function pushBlob(registry: OciRegistry, repository: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const started = await fetchAs(registry, `${registry.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = new URL(started.headers.get('location')!, registry.url);
    location.searchParams.set('digest', digest);
    const finished = await fetchAs(registry, location, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
    expect(finished.status).toBe(201);
    return digest;
  }

  it('stores and serves an OCI image manifest, and deletes it', async () => {
    const registry = await startRegistry();
    try {
      const repository = 'kublambda/default-hello';
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const layer = randomBytes(1024);
      const configDigest = await pushBlob(registry, repository, config);
      const layerDigest = await pushBlob(registry, repository, layer);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
        }),
      );
      const mediaType = 'application/vnd.oci.image.manifest.v1+json';
      const pushed = await fetchAs(registry, `${registry.url}/v2/${repository}/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': mediaType } });
      expect(pushed.status).toBe(201);
      const digest = pushed.headers.get('docker-content-digest');
      expect(digest).toBe(sha256(manifest));

      for (const reference of ['v1', digest]) {
        const fetched = await fetchAs(registry, `${registry.url}/v2/${repository}/manifests/${reference}`, { headers: { accept: mediaType } });
        expect(fetched.status).toBe(200);
        expect(fetched.headers.get('content-type')).toBe(mediaType);
        expect(fetched.headers.get('docker-content-digest')).toBe(digest);
        expect(Buffer.from(await fetched.arrayBuffer()).equals(manifest)).toBe(true);
      }
      const blob = await fetchAs(registry, `${registry.url}/v2/${repository}/blobs/${layerDigest}`);
      expect(Buffer.from(await blob.arrayBuffer()).equals(layer)).toBe(true);

      const deleted = await fetchAs(registry, `${registry.url}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
      expect(deleted.status).toBe(202);
      expect((await fetchAs(registry, `${registry.url}/v2/${repository}/manifests/${digest}`, { headers: { accept: mediaType } })).status).toBe(404);
    } finally {
      await registry.stop();
      await registry.stop();
    }
    await expectStoppedAndRemoved(Number(new URL(registry.url).port), registry.dir);
  });

  it('refuses pushes and reads without its credentials, or with a wrong password', async () => {
    const registry = await startRegistry();
    try {
      const wrong = `Basic ${Buffer.from(`${registry.username}:not-${registry.password}`).toString('base64')}`;
      for (const headers of [{}, { authorization: wrong }]) {
        expect((await fetch(`${registry.url}/v2/`, { headers })).status).toBe(401);
        expect((await fetch(`${registry.url}/v2/kublambda/evil/blobs/uploads/`, { method: 'POST', headers })).status).toBe(401);
        expect((await fetch(`${registry.url}/v2/kublambda/evil/manifests/latest`, { method: 'PUT', body: '{}', headers })).status).toBe(401);
      }
      expect((await fetchAs(registry, `${registry.url}/v2/`)).status).toBe(200);
    } finally {
      await registry.stop();
    }
  });
});
