// A lambda's image end to end: the runner base image (tools/images/runner-base-image.ts) pushed to
// a real registry, Debian's docker-registry (CNCF distribution) from startRegistry(), on loopback
// behind htpasswd; a lambda image built on it with buildImage (lambda.json and lambda.mjs under
// /lambda), pulled back through the registry API (unpackImage), and its entrypoint run. What
// stands in: `chroot` into the unpacked layers, with /proc mounted and /dev/null made, stands in
// for a container runtime (no namespaces, cgroups or overlay filesystem; the test runs as root).
// Real: the image's Node, prlimit and their libraries (this machine's, found with ldd), the
// bundled runner, and the kernel running them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { digestOf } from '@kublambda/artifact-store';
import { freePort, startRegistry, waitUntil, type OciRegistry } from '@kublambda/dev-servers';
import { buildImage, getSinglePlatformManifest, RegistryClient, unpackImage, type Descriptor, type ImageConfigJson, type ImageManifestJson } from '@kublambda/oci-image';
import { STANDALONE_ASSET_FILE, STANDALONE_LAMBDA_FILE, type StandaloneLambda } from '@kublambda/route-table';
import { RUNNER_ENTRYPOINT, runRunnerBaseImage } from './runner-base-image.ts';
import { hostCommand, RuntimeMounts, stopRunner } from './chroot.testing.ts';

const BASE_REPO = 'kublambda/runner-base';
const BASE_TAG = 'test';

const helloSource = `export default async (request) => new Response(\`\${process.env.GREETING} from \${new URL(request.url).pathname}\`);`;
const helloLambda: StandaloneLambda = {
  namespace: 'shop', name: 'hello', artifact: { digest: digestOf(Buffer.from(helloSource)), size: Buffer.byteLength(helloSource) }, runtime: 'nodejs',
  timeoutSeconds: 10, memoryMiB: 128, concurrency: 10, cpuMillis: 10_000, network: 'outbound', stateTables: [],
};

let registry: OciRegistry;
let client: RegistryClient;
let base: { repo: string; digest: string; reference: string };
let baseLayer: Descriptor;
let rootfs: string | undefined;
const mounts = new RuntimeMounts();
let runner: ChildProcess | undefined;
const runnerOutput: string[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ url: registry.url, username: registry.username, password: registry.password, insecure: true });
  // The CLI without a process; --rebundle: the runner bundled from the current source, not whatever dist/ holds.
  const out: string[] = [];
  const err: string[] = [];
  const started = Date.now();
  const code = await runRunnerBaseImage(
    ['--registry', registry.url, '--user', registry.username, '--password', registry.password, '--repo', BASE_REPO, '--tag', BASE_TAG, '--rebundle'],
    { stdout: (text) => out.push(text), stderr: (text) => err.push(text) },
  );
  if (code !== 0) throw new Error(`runner-base-image exited ${code}:\n${err.join('')}`);
  base = JSON.parse(out.join('')) as { repo: string; digest: string; reference: string };
  expect(base).toEqual({ repo: BASE_REPO, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), reference: `${registry.host}/${BASE_REPO}@${base.digest}` });
  const manifest = JSON.parse((await client.getManifest(BASE_REPO, base.digest)).bytes.toString()) as ImageManifestJson;
  baseLayer = manifest.layers[0]!;
  console.log(`runner base image: ${baseLayer.size} bytes compressed (one layer), bundled, assembled and pushed in ${Date.now() - started} ms; the CLI said:\n${err.join('')}`);
}, 300_000);

afterAll(async () => {
  if (runner) await stopRunner(runner);
  await mounts.undo();
  if (rootfs) await rm(rootfs, { recursive: true, force: true });
  await registry?.stop();
}, 60_000);

describe('a lambda image on the runner base image', () => {
  it('is built and pushed, pulled and unpacked, and its entrypoint in a chroot serves the lambda over HTTP', async () => {
    const target = { repo: 'lambdas/shop/hello', tag: 'v1' };
    const started = Date.now();
    const built = await buildImage({
      registry: client,
      base: { repo: BASE_REPO, reference: base.digest },
      target,
      files: {
        [STANDALONE_LAMBDA_FILE]: { bytes: Buffer.from(JSON.stringify(helloLambda)), mode: 0o644 },
        [STANDALONE_ASSET_FILE]: { bytes: Buffer.from(helloSource), mode: 0o644 },
      },
      entrypoint: RUNNER_ENTRYPOINT,
    });
    const buildMs = Date.now() - started;
    const manifest = JSON.parse((await getSinglePlatformManifest(client, target.repo, built.digest)).bytes.toString()) as ImageManifestJson;
    const compressed = manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
    console.log(`lambda image ${built.reference}: ${compressed} bytes compressed (base layer ${baseLayer.size} + lambda layer ${built.layer.size}), built and pushed in ${buildMs} ms`);
    expect(manifest.layers.map((layer) => layer.digest)).toEqual([baseLayer.digest, built.layer.digest]);

    const config = JSON.parse((await client.getBlob(target.repo, manifest.config.digest)).toString()) as ImageConfigJson;
    expect(config.config?.Env).toEqual(['KUBLAMBDA_STANDALONE_LAMBDA=/lambda/lambda.json', 'PATH=/usr/local/bin:/usr/bin:/bin']);

    rootfs = await mkdtemp(path.join(os.tmpdir(), 'runner-image-rootfs-'));
    await unpackImage(client, target.repo, built.digest, rootfs);
    await mounts.provide(rootfs);

    const port = await freePort();
    const imageEnv = Object.fromEntries((config.config?.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
    const child = spawn(await hostCommand('chroot'), [rootfs, ...config.config!.Entrypoint!, ...(config.config!.Cmd ?? [])], {
      cwd: '/',
      env: { ...imageEnv, PORT: String(port), HOST: '127.0.0.1', LAMBDA_ENV_GREETING: 'hello from the image' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    runner = child;
    child.stdout!.on('data', (chunk: Buffer) => runnerOutput.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => runnerOutput.push(chunk.toString()));
    child.on('error', (error) => runnerOutput.push(`spawn: ${error.message}`));
    await waitUntil(
      'the runner in the chroot to listen',
      async () => {
        if (child.exitCode !== null) throw new Error(`the runner exited (code ${child.exitCode}):\n${runnerOutput.join('')}`);
        return runnerOutput.join('').includes('"message":"listening"');
      },
      { intervalMs: 50, timeoutMs: 60_000 },
    );
    const response = await fetch(`http://127.0.0.1:${port}/greet/me`);
    const body = await response.text();
    if (response.status !== 200) throw new Error(`the lambda answered ${response.status} ${body}; the runner's output:\n${runnerOutput.join('')}`);
    expect({ status: response.status, body }).toEqual({ status: 200, body: 'hello from the image from /greet/me' });
    expect(runnerOutput.join('')).toContain('"mode":"standalone"');
  }, 180_000);
});
