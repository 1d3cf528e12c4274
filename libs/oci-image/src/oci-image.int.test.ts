// Image build, push, mount, delete and run against a real registry: Debian's docker-registry
// (CNCF distribution 2.8) from startRegistry(), on loopback behind htpasswd. Real too: the
// base image's Node binary and shared libraries (this machine's, found with ldd) and the
// kernel running them. What stands in: `chroot` into the unpacked layers stands in for a
// container runtime (no namespaces, cgroups or overlay filesystem; the test runs as root).
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, startRegistry, waitUntil, type OciRegistry } from '@kublambda/dev-servers';
import { collectBaseImageFiles, createBaseImage, pushBaseImage, type BaseImage } from './base-image.ts';
import { buildImage, type BuildImageOptions } from './build-image.ts';
import { deleteImage } from './delete-image.ts';
import type { ImageConfigJson, ImageManifestJson } from './image-data.ts';
import { readImageLayer } from './image-layer.ts';
import { OCI_MANIFEST } from './media-types.ts';
import { RegistryClient, RegistryError } from './registry-client.ts';
import { unpackImage } from './unpack-image.ts';

const HELLO_APP = `import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
const extra = existsSync('/app/extra.txt') ? readFileSync('/app/extra.txt', 'utf8').trim() : '';
createServer((request, response) => response.end('hello from the image' + (extra ? ': ' + extra : '')))
  .listen(Number(process.env.PORT), '127.0.0.1');
`;

interface SeenRequest {
  method: string;
  url: URL;
  status: number;
}

let registry: OciRegistry;
let appDir: string;
let base: BaseImage;
/** Pushed once, read by the tests; each test writes only to its own repositories. */
const BASE_REPO = 'kublambda/runner-base';
const seen: SeenRequest[] = [];

function client(password?: string): RegistryClient {
  return new RegistryClient({
    url: registry.url,
    username: registry.username,
    password: password ?? registry.password,
    insecure: true,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      seen.push({ method: init?.method ?? 'GET', url: new URL(String(input)), status: response.status });
      return response;
    },
  });
}

/** chroot on this machine's PATH (the child's PATH is the image's, which has no sbin). */
async function hostCommand(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat('/usr/sbin', '/sbin')) {
    const candidate = path.join(dir, name);
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  throw new Error(`${name} is not installed`);
}

function repo(name: string): string {
  return `test/${name}-${randomBytes(3).toString('hex')}`;
}

/** The blob requests to one repository since `from`: upload sessions, mounts and their answers, upload PUTs. */
function blobTraffic(repository: string, from: number) {
  const requests = seen.slice(from).filter((request) => request.url.pathname.startsWith(`/v2/${repository}/blobs/uploads/`));
  const posts = requests.filter((request) => request.method === 'POST');
  return {
    uploadSessions: posts.filter((request) => !request.url.searchParams.has('mount')).length,
    mounted: posts.filter((request) => request.url.searchParams.has('mount') && request.status === 201).length,
    mountRefused: posts.filter((request) => request.url.searchParams.has('mount') && request.status === 202).length,
    uploadPuts: requests.filter((request) => request.method === 'PUT').length,
  };
}

const addedFile = { '/app/extra.txt': { bytes: Buffer.from('derived layer\n'), mode: 0o644 } };

function derivedOptions(registryClient: RegistryClient, target: string, extra: Partial<BuildImageOptions> = {}): BuildImageOptions {
  return {
    registry: registryClient,
    base: { repo: BASE_REPO, reference: 'dev' },
    target: { repo: target, tag: 'v1' },
    files: addedFile,
    entrypoint: ['/usr/local/bin/node'],
    cmd: ['/app/hello.mjs'],
    env: { GREETING: 'hello' },
    ...extra,
  };
}

beforeAll(async () => {
  registry = await startRegistry();
  appDir = await mkdtemp(path.join(os.tmpdir(), 'oci-image-app-'));
  await writeFile(path.join(appDir, 'hello.mjs'), HELLO_APP, { mode: 0o644 });
  const started = Date.now();
  base = createBaseImage(await collectBaseImageFiles({ appDir }));
  const assembled = Date.now() - started;
  await pushBaseImage(client(), { repo: BASE_REPO, tag: 'dev' }, base);
  console.log(
    `base image: ${base.layer.size} bytes compressed (one layer), assembled in ${assembled} ms, pushed in ${Date.now() - started - assembled} ms`,
  );
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  if (appDir) await rm(appDir, { recursive: true, force: true });
});

describe('base image', () => {
  it('is assembled reproducibly and pushed with node as the entrypoint', async () => {
    const again = createBaseImage(await collectBaseImageFiles({ appDir }));
    expect(again.image.manifestDigest).toBe(base.image.manifestDigest);

    const target = repo('base');
    const pushed = await pushBaseImage(client(), { repo: target, tag: 'dev' }, again);
    expect(pushed.digest).toBe(base.image.manifestDigest);
    expect(pushed.reference).toBe(`${registry.host}/${target}@${pushed.digest}`);
    expect(await client().headManifest(target, 'dev')).toEqual({ digest: pushed.digest, mediaType: OCI_MANIFEST, size: base.image.manifest.length });
    const manifest = JSON.parse((await client().getManifest(target, pushed.digest)).bytes.toString()) as ImageManifestJson;
    const config = JSON.parse((await client().getBlob(target, manifest.config.digest)).toString()) as ImageConfigJson;
    expect(config.config).toEqual({ Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Entrypoint: ['/usr/local/bin/node'] });
    expect([config.os, config.architecture, config.created]).toEqual(['linux', 'amd64', '1970-01-01T00:00:00Z']);
  }, 120_000);
});

describe('derived image', () => {
  it('is fetchable by digest (manifest, config, layers), holds the added file, and builds to the same digest twice', async () => {
    const target = repo('derived');
    const registryClient = client();
    const started = Date.now();
    const built = await buildImage(derivedOptions(registryClient, target));
    console.log(`derived image (one small layer on the ${base.layer.size}-byte base): built and pushed in ${Date.now() - started} ms`);
    expect(built.reference).toBe(`${registry.host}/${target}@${built.digest}`);

    const manifest = await registryClient.getManifest(target, built.digest);
    expect(manifest.mediaType).toBe(OCI_MANIFEST);
    const image = JSON.parse(manifest.bytes.toString()) as ImageManifestJson;
    expect(image.layers.map((layer) => layer.digest)).toEqual([base.layer.compressedDigest, built.layer.digest]);
    const config = JSON.parse((await registryClient.getBlob(target, image.config.digest)).toString()) as ImageConfigJson;
    expect(config.rootfs.diff_ids).toEqual([base.layer.diffId, built.layer.diffId]);
    expect(config.config).toEqual({
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'GREETING=hello'],
      Entrypoint: ['/usr/local/bin/node'],
      Cmd: ['/app/hello.mjs'],
    });
    expect(config.history).toHaveLength(2);
    for (const layer of image.layers) expect(await registryClient.headBlob(target, layer.digest)).toEqual({ size: layer.size });
    const added = readImageLayer(await registryClient.getBlob(target, built.layer.digest));
    expect(added.map((entry) => entry.path)).toEqual(['app', 'app/extra.txt']);
    expect(added[1]!.bytes.toString()).toBe('derived layer\n');

    const before = seen.length;
    const again = await buildImage(derivedOptions(registryClient, target));
    expect(again.digest).toBe(built.digest);
    expect(again.blobs.map((blob) => blob.outcome)).toEqual(['present', 'present', 'present']);
    expect(blobTraffic(target, before)).toEqual({ uploadSessions: 0, mounted: 0, mountRefused: 0, uploadPuts: 0 });
  }, 120_000);

  it('reaches a second repository by cross-repository mount, with no second upload of any layer', async () => {
    const first = repo('first');
    const second = repo('second');
    const registryClient = client();
    let mark = seen.length;
    const built = await buildImage(derivedOptions(registryClient, first));
    // The base layer comes from the base repository by mount; the new layer and config are uploaded once.
    expect(built.blobs.map((blob) => blob.outcome)).toEqual(['uploaded', 'mounted', 'uploaded']);
    expect(blobTraffic(first, mark)).toEqual({ uploadSessions: 2, mounted: 1, mountRefused: 0, uploadPuts: 2 });

    mark = seen.length;
    const copy = await buildImage(derivedOptions(registryClient, second, { mountFrom: first }));
    expect(copy.digest).toBe(built.digest);
    expect(copy.blobs.map((blob) => blob.outcome)).toEqual(['mounted', 'mounted', 'mounted']);
    expect(blobTraffic(second, mark)).toEqual({ uploadSessions: 0, mounted: 3, mountRefused: 0, uploadPuts: 0 });
    expect(registryClient.stats).toEqual({ blobUploads: 2, blobMounts: 4, blobMountsRefused: 0, manifestPuts: 2 });
  }, 120_000);

  it('uploads into the session the registry offers when a mount is refused', async () => {
    const target = repo('refused');
    const registryClient = client();
    const mark = seen.length;
    // A repository that does not exist has nothing to mount from: distribution answers 202 with an upload session.
    const built = await buildImage(derivedOptions(registryClient, target, { mountFrom: 'test/nothing-here' }));
    expect(built.blobs.map((blob) => blob.outcome)).toEqual(['uploaded', 'mounted', 'uploaded']);
    expect(blobTraffic(target, mark)).toEqual({ uploadSessions: 0, mounted: 1, mountRefused: 2, uploadPuts: 2 });
  }, 120_000);

  it('is deleted by digest (404 after, twice is fine) while the same image in another repository stays pullable', async () => {
    const doomed = repo('doomed');
    const kept = repo('kept');
    const registryClient = client();
    const built = await buildImage(derivedOptions(registryClient, doomed));
    await buildImage(derivedOptions(registryClient, kept, { mountFrom: doomed }));

    expect(await deleteImage(registryClient, doomed, built.digest)).toBe('deleted');
    const gone = (await registryClient.getManifest(doomed, built.digest).catch((error: unknown) => error)) as RegistryError;
    expect(gone).toBeInstanceOf(RegistryError);
    expect(gone.status).toBe(404);
    expect(gone.message).toContain(`getManifest ${doomed}@${built.digest}: HTTP 404`);
    expect(await registryClient.headManifest(doomed, built.digest)).toBeUndefined();
    expect(await deleteImage(registryClient, doomed, built.digest)).toBe('absent');

    const pulled = await registryClient.getManifest(kept, built.digest);
    const image = JSON.parse(pulled.bytes.toString()) as ImageManifestJson;
    for (const layer of image.layers) expect((await registryClient.getBlob(kept, layer.digest)).length).toBe(layer.size);
  }, 120_000);

  it('names the registry and 401 when the credentials are refused', async () => {
    const error = (await buildImage(derivedOptions(client('not-the-password'), repo('denied'))).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain(`registry ${registry.host}: getManifest ${BASE_REPO}:dev: HTTP 401: the registry refused the credentials`);
    expect(error.cause).toBeInstanceOf(RegistryError);
    expect((error.cause as RegistryError).status).toBe(401);
  });
});

describe('the derived image runs', () => {
  let rootfs: string | undefined;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    if (rootfs) await rm(rootfs, { recursive: true, force: true });
  });

  it('answers over HTTP from its entrypoint in a chroot of its pulled layers', async () => {
    const target = repo('run');
    const registryClient = client();
    const built = await buildImage(derivedOptions(registryClient, target));
    rootfs = await mkdtemp(path.join(os.tmpdir(), 'oci-image-rootfs-'));
    const unpacked = await unpackImage(registryClient, target, built.digest, rootfs);
    expect(unpacked.digest).toBe(built.digest);

    const config = JSON.parse(
      (await registryClient.getBlob(target, (JSON.parse((await registryClient.getManifest(target, built.digest)).bytes.toString()) as ImageManifestJson).config.digest)).toString(),
    ) as ImageConfigJson;
    const port = await freePort();
    const output: string[] = [];
    child = spawn(await hostCommand('chroot'), [rootfs, ...config.config!.Entrypoint!, ...config.config!.Cmd!], {
      env: { ...Object.fromEntries(config.config!.Env!.map((entry) => entry.split(/=(.*)/s, 2) as [string, string])), PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.on('error', (error) => output.push(`spawn: ${error.message}`));
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));

    const body = await waitUntil(
      'the image to answer on its port',
      async () => {
        if (child!.exitCode !== null) throw new Error(`the image exited with ${child!.exitCode}: ${output.join('')}`);
        return fetch(`http://127.0.0.1:${port}/`).then((response) => response.text(), () => undefined);
      },
      { timeoutMs: 30_000, describe: () => output.join('') },
    );
    expect(body).toBe('hello from the image: derived layer');
  }, 120_000);
});
