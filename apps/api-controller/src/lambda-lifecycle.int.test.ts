// api-controller and builder run as local processes against the real API server, Redis and
// S3 server (see lambda-platform.testing.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { kubectl } from '@kublambda/dev-servers';
import type { Lambda } from '@kublambda/crd-types';
import { condition, isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';
import { ROUTES_KEY } from '@kublambda/route-table';

let platform: LambdaPlatform;

beforeAll(async () => {
  platform = await startLambdaPlatform('lifecycle');
  await platform.startBuilder();
  await platform.startController();
}, 60_000);
afterAll(async () => {
  await platform?.stop();
});

/** Loads the stored asset the way a runner would and calls it. */
async function callAsset(lambda: Lambda | undefined, url: string): Promise<string> {
  const asset = await platform.assets.get(lambda!.status!.artifact!.digest);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'asset-'));
  try {
    const file = path.join(dir, 'asset.mjs');
    await writeFile(file, asset);
    const handler = (await import(pathToFileURL(file).href)).default;
    const response: Response = typeof handler === 'function' ? await handler(new Request(url), {}) : await handler.fetch(new Request(url), {}, {});
    return await response.text();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const routeOf = async (name: string) => (await platform.routes()).find((route) => route.name === name);
const storedDigests = async () => (await platform.assets.list()).map((asset) => asset.digest);

describe('a Lambda from apply to delete', () => {
  it('builds, stores and routes a new lambda, and kubectl wait sees it Ready', async () => {
    await platform.apply('hello', { source: { inline: 'export default async (req: Request) => new Response(`hello ${new URL(req.url).searchParams.get("name")}`)' } });
    const wait = await kubectl(['wait', '--for=condition=Ready', 'lam/hello', '-n', platform.namespace, '--timeout=60s']);
    expect(wait.stderr).toBe('');
    expect(wait.stdout.trim()).toBe('lambda.kublambda.io/hello condition met');

    const lambda = await platform.waitFor('hello', 'Ready', isReady);
    expect(lambda!.metadata.finalizers).toEqual(['kublambda.io/cleanup']);
    const { status } = lambda!;
    expect(status!.observedGeneration).toBe(1);
    expect(status!.sourceDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(status!.artifact!.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(condition(lambda, 'Built')).toMatchObject({ status: 'True', reason: 'Built', observedGeneration: 1 });
    expect(condition(lambda, 'Routed')).toMatchObject({ status: 'True', reason: 'Published', message: `/${platform.namespace}/hello is served by ${status!.artifact!.digest}` });

    expect(await storedDigests()).toContain(status!.artifact!.digest);
    expect(await callAsset(lambda, 'http://x/?name=kube')).toBe('hello kube');
    expect(await routeOf('hello')).toEqual(
      expect.objectContaining({ key: `${platform.namespace}/hello`, pathPrefix: `/${platform.namespace}/hello`, artifact: status!.artifact, timeoutSeconds: 30, generation: 1 }),
    );

    const events = await kubectl(['get', 'events', '-n', platform.namespace, '--field-selector', 'involvedObject.name=hello', '-o', 'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).toEqual(expect.arrayContaining(['Building', 'Built', 'Published', 'Serving']));
  });

  it('leaves a settled lambda alone: repeated reconciles write nothing', async () => {
    await platform.apply('settled', { source: { inline: 'export default () => new Response("calm")' } });
    const settled = await platform.waitFor('settled', 'Ready', isReady);
    const eventsBefore = await kubectl(['get', 'events', '-n', platform.namespace, '-o', 'name']);
    // The controller relists every second here, so this spans several full reconciles.
    await sleep(3_500);
    const later = await platform.get('settled');
    expect(later!.metadata.resourceVersion).toBe(settled!.metadata.resourceVersion);
    expect((await kubectl(['get', 'events', '-n', platform.namespace, '-o', 'name'])).stdout).toBe(eventsBefore.stdout);
  });

  it('rebuilds on a source change, moves the route and removes the unreferenced old asset', async () => {
    await platform.apply('changing', { source: { inline: 'export default async () => new Response("first")' } });
    const before = await platform.waitFor('changing', 'Ready', isReady);
    const oldDigest = before!.status!.artifact!.digest;
    await platform.apply('changing', { source: { inline: 'export default async () => new Response("hello again")' }, timeoutSeconds: 5 });
    const after = await platform.waitFor('changing', 'Ready at generation 2', (l) => isReady(l) && l!.status!.artifact!.digest !== oldDigest);
    expect(after!.status!.sourceDigest).not.toBe(before!.status!.sourceDigest);
    expect(await callAsset(after, 'http://x/')).toBe('hello again');
    expect(await routeOf('changing')).toMatchObject({ artifact: after!.status!.artifact, timeoutSeconds: 5, generation: 2 });
    expect(await storedDigests()).toContain(after!.status!.artifact!.digest);
    expect(await storedDigests()).not.toContain(oldDigest);
  });

  it('reports a syntax error with file, line and column, keeps serving the last good asset, and recovers', async () => {
    await platform.apply('fragile', { source: { inline: 'export default async () => new Response("good")' } });
    const good = await platform.waitFor('fragile', 'Ready', isReady);
    await platform.apply('fragile', { source: { inline: 'export default async () => {\n  return new Response("oops"\n};' } });
    const broken = await platform.waitFor('fragile', 'Built=False', (l) => l?.metadata.generation === 2 && condition(l, 'Built')?.status === 'False');
    expect(condition(broken, 'Built')).toMatchObject({ reason: 'CompileFailed', message: expect.stringMatching(/^index\.ts:3:\d+: /) });
    expect(condition(broken, 'Ready')).toMatchObject({ status: 'False', reason: 'CompileFailed' });
    expect(broken!.status!.observedGeneration).toBe(2);
    // The route still points at the last asset that built.
    expect((await routeOf('fragile'))!.artifact).toEqual(good!.status!.artifact);

    await platform.apply('fragile', { source: { inline: 'export default async () => new Response("fixed")' } });
    const fixed = await platform.waitFor('fragile', 'Ready again', isReady);
    expect(await callAsset(fixed, 'http://x/')).toBe('fixed');
  });

  it('reports an import that cannot be resolved', async () => {
    await platform.apply('unresolved', { source: { files: { 'index.ts': 'import { greet } from "./greeting";\nexport default async () => new Response(greet())' } } });
    const lambda = await platform.waitFor('unresolved', 'Built=False', (l) => condition(l, 'Built')?.status === 'False');
    expect(condition(lambda, 'Built')).toMatchObject({ reason: 'CompileFailed', message: expect.stringContaining('index.ts:1:') });
    expect(condition(lambda, 'Built')!.message).toContain('./greeting');
    expect(condition(lambda, 'Routed')).toMatchObject({ status: 'False', reason: 'NotBuilt' });
  });

  it('fails type errors only when type checking is asked for', async () => {
    const source = { inline: 'const answer: string = 42;\nexport default async () => new Response(String(answer))' };
    await platform.apply('typed', { source });
    const unchecked = await platform.waitFor('typed', 'Ready without type checking', isReady);
    expect(await callAsset(unchecked, 'http://x/')).toBe('42');

    await platform.apply('typed', { source, build: { typeCheck: true } });
    const checked = await platform.waitFor('typed', 'Built=False with type checking', (l) => l?.metadata.generation === 2 && condition(l, 'Built')?.status === 'False');
    expect(condition(checked, 'Built')).toMatchObject({ reason: 'CompileFailed', message: expect.stringContaining("index.ts:1:7: Type 'number' is not assignable to type 'string'") });
  });

  it('bundles an npm dependency named in package.json', async () => {
    await platform.apply('with-dependency', {
      source: {
        files: {
          'package.json': JSON.stringify({ dependencies: { 'escape-html': '1.0.3' } }),
          'index.js': 'import escapeHtml from "escape-html";\nexport default { fetch: () => new Response(escapeHtml("<b>&</b>")) };',
        },
      },
      entrypoint: 'index.js',
    });
    const lambda = await platform.waitFor('with-dependency', 'Ready', isReady, 120_000);
    expect(await callAsset(lambda, 'http://x/')).toBe('&lt;b&gt;&amp;&lt;/b&gt;');
  }, 150_000);

  it('reports a missing ConfigMap source, and builds once the ConfigMap appears', async () => {
    await platform.apply('from-configmap', { source: { configMapRef: { name: 'from-configmap-src' } } });
    const missing = await platform.waitFor('from-configmap', 'Built=False', (l) => condition(l, 'Built')?.status === 'False');
    expect(condition(missing, 'Built')).toMatchObject({ reason: 'SourceNotFound', message: expect.stringContaining('from-configmap-src') });
    const created = await kubectl(['create', 'configmap', 'from-configmap-src', '-n', platform.namespace, '--from-literal=index.ts=export default () => new Response("from a ConfigMap")']);
    expect(created.exitCode).toBe(0);
    // The controller polls a missing source; nudge it now rather than wait for the poll.
    await kubectl(['annotate', 'lam/from-configmap', '-n', platform.namespace, 'touched=1']);
    const built = await platform.waitFor('from-configmap', 'Ready', isReady);
    expect(await callAsset(built, 'http://x/')).toBe('from a ConfigMap');
  });

  it('leaves nothing behind in S3 or Redis once every lambda is deleted', async () => {
    await platform.apply('doomed-ok', { source: { inline: 'export default () => new Response("bye")' } });
    await platform.apply('doomed-broken', { source: { inline: 'export default (' } });
    await platform.waitFor('doomed-ok', 'Ready', isReady);
    await platform.waitFor('doomed-broken', 'Built=False', (l) => condition(l, 'Built')?.status === 'False');

    const all = await kubectl(['get', 'lam', '-n', platform.namespace, '-o', 'name']);
    const names = all.stdout.trim().split('\n').map((line) => line.replace('lambda.kublambda.io/', ''));
    expect(names).toEqual(expect.arrayContaining(['doomed-ok', 'doomed-broken']));
    for (const name of names) await platform.remove(name);
    for (const name of names) await platform.waitFor(name, 'gone', (l) => l === undefined, 30_000);

    expect(await platform.assetKeys()).toEqual([]);
    expect(await platform.routes()).toEqual([]);
    const keys = await platform.redisKeys();
    expect(keys.filter((key) => key.includes(platform.namespace))).toEqual([]);
    expect(keys).not.toContain(ROUTES_KEY);
  });
});
