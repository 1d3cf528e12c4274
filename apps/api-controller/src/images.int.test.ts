// Lambda images end to end: api-controller (IMAGE_BUILDS=on) and builder (IMAGE_BACKEND=direct)
// as local processes against the real API server, Redis, S3 and a real registry (the CNCF
// distribution registry). api-controller reaches the registry through a TCP relay in this
// process, so a test can take the registry away from it (and give it back on the same port,
// with the same storage) while the builder and the test still reach it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, kubectl, startRegistry, waitUntil, type ManagedProcess, type OciRegistry } from '@kublambda/dev-servers';
import type { Lambda } from '@kublambda/crd-types';
import { collectBaseImageFiles, createBaseImage, pushBaseImage, RegistryClient, type ImageManifestJson } from '@kublambda/oci-image';
import { parseImageReference } from './lambda-image.ts';
import { condition, isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

const BASE = { repo: 'kublambda/runner-base', tag: 'test' };
const BUILDER = 'builder-images';

let platform: LambdaPlatform;
let registry: OciRegistry;
let relay: Relay;
let controller: ManagedProcess;
let client: RegistryClient;

interface Relay {
  url: string;
  /** Refuses connections and drops the open ones: the registry is away for whoever uses the relay. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  open(): Promise<void>;
}

async function startRelay(targetPort: number): Promise<Relay> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const listening = net.createServer((inbound) => {
        const outbound = net.connect(targetPort, '127.0.0.1');
        const drop = () => (inbound.destroy(), outbound.destroy(), sockets.delete(inbound), sockets.delete(outbound));
        for (const socket of [inbound, outbound]) {
          sockets.add(socket);
          socket.on('error', drop).on('close', drop);
        }
        inbound.pipe(outbound).pipe(inbound);
      });
      listening.once('error', reject);
      listening.listen(port, '127.0.0.1', () => ((server = listening), resolve()));
    });
  const close = async () => {
    const closing = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  await open();
  return { url: `http://127.0.0.1:${port}`, open, close };
}

const registryEnv = () => ({ IMAGE_REGISTRY_USERNAME: registry.username, IMAGE_REGISTRY_PASSWORD: registry.password, IMAGE_REGISTRY_INSECURE: 'true' });

beforeAll(async () => {
  platform = await startLambdaPlatform('images');
  registry = await startRegistry();
  client = new RegistryClient({ url: registry.url, username: registry.username, password: registry.password, insecure: true });
  // The runner base: this machine's Node and its libraries (no app files: nothing runs the image here).
  await pushBaseImage(client, BASE, createBaseImage(await collectBaseImageFiles()));
  relay = await startRelay(Number(registry.host.split(':')[1]));
  await platform.startBuilder(BUILDER, { IMAGE_BACKEND: 'direct', IMAGE_REGISTRY_URL: registry.url, IMAGE_BASE: `${BASE.repo}:${BASE.tag}`, ...registryEnv() });
  controller = await platform.startController(undefined, controllerEnv());
}, 180_000);
afterAll(async () => {
  await platform?.stop();
  await relay?.close();
  await registry?.stop();
});

const imageReady = (lambda: Lambda | undefined) => isReady(lambda) && condition(lambda, 'ImageReady')?.status === 'True';
const repositoryOf = (name: string) => `kublambda/${platform.namespace}-${name}`;

/** Pullable: the manifest by digest and every blob it names. */
async function expectPullable(image: string): Promise<void> {
  const { repository, digest } = parseImageReference(image)!;
  const manifest = await client.getManifest(repository, digest);
  const parsed = JSON.parse(manifest.bytes.toString('utf8')) as ImageManifestJson;
  for (const blob of [parsed.config, ...parsed.layers]) expect(await client.headBlob(repository, blob.digest)).toEqual({ size: blob.size });
}

async function manifestOf(image: string) {
  const { repository, digest } = parseImageReference(image)!;
  return client.headManifest(repository, digest);
}

async function eventReasons(name: string): Promise<string[]> {
  const events = await kubectl(['get', 'events', '-n', platform.namespace, '--field-selector', `involvedObject.name=${name}`, '-o', 'jsonpath={.items[*].reason}']);
  return events.stdout.split(' ').filter(Boolean);
}

/** The builder's "image pushed" log lines about a lambda. */
async function pushLogs(name: string): Promise<Array<{ mountFrom?: string; blobs: Record<string, number> }>> {
  const log = await readFile(path.join(platform.logDir, `${BUILDER}.log`), 'utf8');
  return log
    .split('\n')
    .flatMap((line) => (line.startsWith('{') ? [JSON.parse(line)] : []))
    .filter((entry) => entry.message === 'image pushed' && entry.lambda === name && entry.namespace === platform.namespace);
}

/** A source no other test uses, so each test's images and mounts are its own. */
const sourceOf = (label: string) => `export default async () => new Response(${JSON.stringify(label)})`;

const controllerEnv = () => ({ IMAGE_BUILDS: 'on', IMAGE_REGISTRY_URL: relay.url, ...registryEnv() });

/** Applies a lambda and waits until it is Ready with its image; returns its status.image. */
async function readyWithImage(name: string, label: string): Promise<string> {
  await platform.apply(name, { source: { inline: sourceOf(label) } });
  const lambda = await platform.waitFor(name, 'Ready with its image', imageReady, 120_000);
  return lambda!.status!.image!;
}

describe('lambda images', () => {
  it('builds and pushes the image of a new lambda: ImageReady=True and status.image pinned by digest', async () => {
    await platform.apply('first', { source: { inline: sourceOf('first') } });
    const lambda = await platform.waitFor('first', 'Ready with its image', imageReady, 120_000);
    const image = lambda!.status!.image!;
    expect(image).toMatch(new RegExp(`^${registry.host}/${repositoryOf('first')}@sha256:[a-f0-9]{64}$`));
    expect(condition(lambda, 'ImageReady')).toMatchObject({ reason: 'Pushed', observedGeneration: 1, message: expect.stringContaining(image) });
    expect(condition(lambda, 'Ready')).toMatchObject({ status: 'True', reason: 'Serving', message: 'the lambda is built, its image pushed and routed' });
    // Tagged with the asset's digest, and the tag names the same manifest.
    const tagged = await client.headManifest(repositoryOf('first'), lambda!.status!.artifact!.digest.replace('sha256:', ''));
    expect(tagged?.digest).toBe(parseImageReference(image)!.digest);
    await expectPullable(image);
    expect(await eventReasons('first')).toEqual(expect.arrayContaining(['Building', 'Pushed', 'Serving']));
  });

  it('builds the image of a second lambda from the same source by mounting from the first', async () => {
    const firstImage = await readyWithImage('mount-a', 'mounted');
    const secondImage = await readyWithImage('mount-b', 'mounted');
    expect((await platform.get('mount-b'))!.status!.artifact).toEqual((await platform.get('mount-a'))!.status!.artifact);
    expect(parseImageReference(secondImage)!.repository).toBe(repositoryOf('mount-b'));
    const [pushed] = await pushLogs('mount-b');
    expect(pushed).toMatchObject({ mountFrom: repositoryOf('mount-a') });
    expect(pushed!.blobs.mounted).toBeGreaterThan(0);
    await expectPullable(secondImage);
    await expectPullable(firstImage);
  });

  it('pushes a new image when the source changes and deletes the superseded one', async () => {
    const oldImage = await readyWithImage('change-a', 'before the change');
    const otherImage = await readyWithImage('change-b', 'before the change');
    await platform.apply('change-a', { source: { inline: sourceOf('after the change') } });
    const lambda = await platform.waitFor('change-a', 'Ready with a new image', (l) => imageReady(l) && l!.status!.image !== oldImage, 120_000);
    const newImage = lambda!.status!.image!;
    await expectPullable(newImage);
    await waitUntil('the superseded image to be deleted', async () => (await manifestOf(oldImage)) === undefined, { timeoutMs: 30_000 });
    // Nothing left to delete: the annotation that listed it goes too.
    const settled = await platform.waitFor('change-a', 'without superseded images', (l) => !l?.metadata.annotations?.['kublambda.io/superseded-images']);
    expect(settled!.status!.image).toBe(newImage);
    // The other lambda's image of the old source is untouched.
    await expectPullable(otherImage);
  });

  it('deletes a deleted lambda’s image, and leaves the other lambda’s image alone', async () => {
    const keptImage = await readyWithImage('delete-a', 'deleted');
    const deletedImage = await readyWithImage('delete-b', 'deleted');
    await platform.remove('delete-b');
    await platform.waitFor('delete-b', 'gone', (l) => l === undefined);
    expect(await manifestOf(deletedImage)).toBeUndefined();
    await expectPullable(keptImage);
  });

  it('keeps a deleted lambda Terminating with a Warning while the registry is away, and deletes its image once it is back', async () => {
    const otherImage = await readyWithImage('away-a', 'registry away');
    const image = await readyWithImage('away-b', 'registry away');
    await relay.close();
    try {
      await platform.remove('away-b');
      await waitUntil('a Warning ImageNotDeleted', async () => (await eventReasons('away-b')).includes('ImageNotDeleted'), { timeoutMs: 30_000 });
      const events = await kubectl(['get', 'events', '-n', platform.namespace, '--field-selector', 'involvedObject.name=away-b,reason=ImageNotDeleted', '-o', 'jsonpath={.items[0].type} {.items[0].message}']);
      expect(events.stdout).toMatch(new RegExp(`^Warning could not delete image ${image.replace(/[.]/g, '\\.')}: registry 127\\.0\\.0\\.1:\\d+: deleteManifest `));
      const terminating = await platform.get('away-b');
      expect(terminating!.metadata.deletionTimestamp).toBeDefined();
      expect(terminating!.metadata.finalizers).toEqual(['kublambda.io/cleanup']);
      expect(await manifestOf(image)).toBeDefined();
    } finally {
      await relay.open();
    }
    // Retried with backoff: the registry back on the same port, with the same storage.
    await platform.waitFor('away-b', 'gone', (l) => l === undefined, 60_000);
    expect(await manifestOf(image)).toBeUndefined();
    await expectPullable(otherImage);
  });

  it('with IMAGE_BUILDS=off requests no image job and sets no ImageReady', async () => {
    const builtImage = await readyWithImage('before-off', 'built while images were on');
    await controller.stop();
    try {
      const plainController = await platform.startController();
      try {
        await platform.apply('plain', { source: { inline: sourceOf('plain') } });
        const plain = await platform.waitFor('plain', 'Ready', isReady);
        expect(condition(plain, 'ImageReady')).toBeUndefined();
        expect(plain!.status!.image).toBeUndefined();
        expect(condition(plain, 'Ready')).toMatchObject({ status: 'True', message: 'the lambda is built and routed' });
        expect((await platform.redisKeys()).filter((key) => key.includes('/plain/') && key.includes('/image/'))).toEqual([]);
        expect(await pushLogs('plain')).toEqual([]);
        // A lambda built while images were on loses its ImageReady (Ready no longer waits on it); its image stays.
        const before = await platform.waitFor('before-off', 'without ImageReady', (l) => isReady(l) && condition(l, 'ImageReady') === undefined);
        expect(before!.status!.image).toBe(builtImage);
      } finally {
        await plainController.stop();
      }
    } finally {
      // The other tests expect a controller with images on, whatever order they run in.
      controller = await platform.startController(undefined, controllerEnv());
    }
  });
});
