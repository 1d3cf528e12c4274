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
  controller = await platform.startController(undefined, { IMAGE_BUILDS: 'on', IMAGE_REGISTRY_URL: relay.url, ...registryEnv() });
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

const source = 'export default async () => new Response("same source")';

describe('lambda images', () => {
  let firstImage: string;
  let secondImage: string;

  it('builds and pushes the image of a new lambda: ImageReady=True and status.image pinned by digest', async () => {
    await platform.apply('first', { source: { inline: source } });
    const lambda = await platform.waitFor('first', 'Ready with its image', imageReady, 120_000);
    firstImage = lambda!.status!.image!;
    expect(firstImage).toMatch(new RegExp(`^${registry.host}/${repositoryOf('first')}@sha256:[a-f0-9]{64}$`));
    expect(condition(lambda, 'ImageReady')).toMatchObject({ reason: 'Pushed', observedGeneration: 1, message: expect.stringContaining(firstImage) });
    expect(condition(lambda, 'Ready')).toMatchObject({ status: 'True', reason: 'Serving', message: 'the lambda is built, its image pushed and routed' });
    // Tagged with the asset's digest, and the tag names the same manifest.
    const tagged = await client.headManifest(repositoryOf('first'), lambda!.status!.artifact!.digest.replace('sha256:', ''));
    expect(tagged?.digest).toBe(parseImageReference(firstImage)!.digest);
    await expectPullable(firstImage);
    expect(await eventReasons('first')).toEqual(expect.arrayContaining(['Building', 'Pushed', 'Serving']));
  });

  it('builds the image of a second lambda from the same source by mounting from the first', async () => {
    await platform.apply('second', { source: { inline: source } });
    const lambda = await platform.waitFor('second', 'Ready with its image', imageReady, 120_000);
    secondImage = lambda!.status!.image!;
    expect(lambda!.status!.artifact).toEqual((await platform.get('first'))!.status!.artifact);
    expect(parseImageReference(secondImage)!.repository).toBe(repositoryOf('second'));
    const [pushed] = await pushLogs('second');
    expect(pushed).toMatchObject({ mountFrom: repositoryOf('first') });
    expect(pushed!.blobs.mounted).toBeGreaterThan(0);
    await expectPullable(secondImage);
    await expectPullable(firstImage);
  });

  it('pushes a new image when the source changes and deletes the superseded one', async () => {
    await platform.apply('first', { source: { inline: 'export default async () => new Response("changed")' } });
    const lambda = await platform.waitFor('first', 'Ready with a new image', (l) => imageReady(l) && l!.status!.image !== firstImage, 120_000);
    const newImage = lambda!.status!.image!;
    await expectPullable(newImage);
    await waitUntil('the superseded image to be deleted', async () => (await manifestOf(firstImage)) === undefined, { timeoutMs: 30_000 });
    // Nothing left to delete: the annotation that listed it goes too.
    const settled = await platform.waitFor('first', 'without superseded images', (l) => !l?.metadata.annotations?.['kublambda.io/superseded-images']);
    expect(settled!.status!.image).toBe(newImage);
    // The other lambda's image of the old source is untouched.
    await expectPullable(secondImage);
    firstImage = newImage;
  });

  it('deletes a deleted lambda’s image, and leaves the other lambda’s image alone', async () => {
    await platform.remove('second');
    await platform.waitFor('second', 'gone', (l) => l === undefined);
    expect(await manifestOf(secondImage)).toBeUndefined();
    await expectPullable(firstImage);
  });

  it('keeps a deleted lambda Terminating with a Warning while the registry is away, and deletes its image once it is back', async () => {
    await platform.apply('third', { source: { inline: 'export default async () => new Response("third")' } });
    const ready = await platform.waitFor('third', 'Ready with its image', imageReady, 120_000);
    const image = ready!.status!.image!;
    await relay.close();
    try {
      await platform.remove('third');
      await waitUntil('a Warning ImageNotDeleted', async () => (await eventReasons('third')).includes('ImageNotDeleted'), { timeoutMs: 30_000 });
      const events = await kubectl(['get', 'events', '-n', platform.namespace, '--field-selector', 'involvedObject.name=third,reason=ImageNotDeleted', '-o', 'jsonpath={.items[0].type} {.items[0].message}']);
      expect(events.stdout).toMatch(new RegExp(`^Warning could not delete image ${image.replace(/[.]/g, '\\.')}: registry 127\\.0\\.0\\.1:\\d+: deleteManifest `));
      const terminating = await platform.get('third');
      expect(terminating!.metadata.deletionTimestamp).toBeDefined();
      expect(terminating!.metadata.finalizers).toEqual(['kublambda.io/cleanup']);
      expect(await manifestOf(image)).toBeDefined();
    } finally {
      await relay.open();
    }
    // Retried with backoff: the registry back on the same port, with the same storage.
    await platform.waitFor('third', 'gone', (l) => l === undefined, 60_000);
    expect(await manifestOf(image)).toBeUndefined();
    await expectPullable(firstImage);
  });

  it('with IMAGE_BUILDS=off requests no image job and sets no ImageReady', async () => {
    await controller.stop();
    await platform.startController();
    await platform.apply('plain', { source: { inline: 'export default async () => new Response("plain")' } });
    const plain = await platform.waitFor('plain', 'Ready', isReady);
    expect(condition(plain, 'ImageReady')).toBeUndefined();
    expect(plain!.status!.image).toBeUndefined();
    expect(condition(plain, 'Ready')).toMatchObject({ status: 'True', message: 'the lambda is built and routed' });
    expect((await platform.redisKeys()).filter((key) => key.includes('/image/'))).toEqual([]);
    expect(await pushLogs('plain')).toEqual([]);
    // A lambda built while images were on loses its ImageReady (Ready no longer waits on it); its image stays.
    const first = await platform.waitFor('first', 'without ImageReady', (l) => isReady(l) && condition(l, 'ImageReady') === undefined);
    expect(first!.status!.image).toBe(firstImage);
  });
});
