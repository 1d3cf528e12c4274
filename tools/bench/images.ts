// Image benchmark, one run, everything on 127.0.0.1, stops by itself. A registry of its own
// (Debian's docker-registry, deletion on), the runner base image assembled and pushed as
// `npm run up` does, then, the way the builder's direct backend does (libs/oci-image):
//   B  build time: an image for each of N lambdas (distinct assets of about the size of a
//      bundled lambda): base manifest and config fetched, one layer added, pushed.
//   M  the same N assets into N more repositories, each mounting from the first one's
//      repository (what a second lambda with the same source costs).
//   Q  baseline in the same run: one authenticated request (GET /v2/) to the same registry;
//      the test registry checks a bcrypt password on every request, which dominates B and M.
//   S  sizes: the base image and a lambda's image (manifest + config + layers), and what the
//      lambda's own layer adds.
//   R  registry bytes on disk: base only, after the 2N images, after deleting their
//      manifests, and after the registry's garbage collection (`docker-registry
//      garbage-collect`), which is what reclaims blob space.
//   npm run bench:images [-- --lambdas 20]
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { debianBinary, startRegistry } from '@kublambda/dev-servers';
import { buildImage, deleteImage, pushBaseImage, RegistryClient, type BuiltImage, type ImageManifestJson } from '@kublambda/oci-image';
import { STANDALONE_ASSET_FILE, STANDALONE_LAMBDA_FILE } from '@kublambda/route-table';
import { createRunnerBaseImage, RUNNER_ENTRYPOINT, runnerBaseImageFiles } from '../images/runner-base-image.ts';

const { values } = parseArgs({ options: { lambdas: { type: 'string', default: '20' } } });
const count = Number(values.lambdas);
if (!Number.isInteger(count) || count < 1 || count > 500) throw new Error(`--lambdas must be a whole number from 1 to 500, not "${values.lambdas}"`);

const BASE = { repo: 'kublambda/runner-base', tag: 'bench' };

/** Bytes of all files under dir. */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** A lambda asset of about 6 KiB: code that differs per lambda, so no two layers are the same. */
function assetOf(index: number): Buffer {
  const padding = randomBytes(2048).toString('base64');
  return Buffer.from(`// lambda ${index}\nconst data = ${JSON.stringify(padding)};\nexport default async () => new Response("lambda ${index} " + data.length);\n`);
}

function filesOf(index: number, asset: Buffer) {
  const lambda = { namespace: 'bench', name: `lambda-${index}`, artifact: { digest: `sha256:${'0'.repeat(64)}`, size: asset.length } };
  return {
    [STANDALONE_LAMBDA_FILE]: { bytes: Buffer.from(JSON.stringify(lambda)), mode: 0o644 },
    [STANDALONE_ASSET_FILE]: { bytes: asset, mode: 0o644 },
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(1)} ms, p90 ${percentile(sorted, 90).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
};
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

const registry = await startRegistry();
try {
  let requests = 0;
  const countingFetch: typeof fetch = (input, init) => (requests++, fetch(input, init));
  const client = new RegistryClient({ url: registry.url, username: registry.username, password: registry.password, insecure: true, fetch: countingFetch });
  const storage = path.join(registry.dir, 'storage');
  const base = createRunnerBaseImage(await runnerBaseImageFiles());
  await pushBaseImage(client, BASE, base);
  const baseOnly = await bytesUnder(storage);

  const buildTimes: number[] = [];
  const buildRequests: number[] = [];
  const mountTimes: number[] = [];
  const built: Array<{ repo: string; image: BuiltImage }> = [];
  for (let index = 0; index < count; index++) {
    const files = filesOf(index, assetOf(index));
    const first = { repo: `bench/lambda-${index}`, tag: 'v1' };
    const requestsBefore = requests;
    let started = performance.now();
    const image = await buildImage({ registry: client, base: { repo: BASE.repo, reference: BASE.tag }, target: first, files, entrypoint: RUNNER_ENTRYPOINT });
    buildTimes.push(performance.now() - started);
    buildRequests.push(requests - requestsBefore);
    built.push({ repo: first.repo, image });
    const second = { repo: `bench/copy-${index}`, tag: 'v1' };
    started = performance.now();
    const copy = await buildImage({ registry: client, base: { repo: BASE.repo, reference: BASE.tag }, target: second, files, entrypoint: RUNNER_ENTRYPOINT, mountFrom: first.repo });
    mountTimes.push(performance.now() - started);
    if (copy.digest !== image.digest) throw new Error(`the same files gave ${copy.digest} in ${second.repo} and ${image.digest} in ${first.repo}`);
    if (copy.blobs.some((blob) => blob.outcome === 'uploaded')) throw new Error(`${second.repo} uploaded a blob although ${first.repo} holds them all`);
    built.push({ repo: second.repo, image: copy });
  }
  const withImages = await bytesUnder(storage);
  const pingTimes: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const response = await fetch(`${registry.url}/v2/`, { headers: { authorization: registry.authorization } });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET /v2/ answered ${response.status}`);
    pingTimes.push(performance.now() - started);
  }

  const manifest = JSON.parse((await client.getManifest(built[0]!.repo, built[0]!.image.digest)).bytes.toString('utf8')) as ImageManifestJson;
  const imageBytes = manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0) + built[0]!.image.size;
  const baseBytes = base.layer.size;

  for (const { repo, image } of built) await deleteImage(client, repo, image.digest);
  const afterDelete = await bytesUnder(storage);
  const command = await debianBinary('docker-registry', 'docker-registry');
  // No push is in flight: the collection may run beside the serving registry.
  await execa(command, ['garbage-collect', path.join(registry.dir, 'config.yml')]);
  const afterCollect = await bytesUnder(storage);

  console.log(`images of ${count} lambdas (direct backend, one registry on loopback)
B  build and push, a new repository each:      ${summary(buildTimes)}, ${Math.max(...buildRequests)} registry requests each
M  same asset into another repository (mount): ${summary(mountTimes)}
Q  one authenticated request (baseline):        ${summary(pingTimes)}
S  base image ${mib(baseBytes)} compressed; a lambda image ${mib(imageBytes)} (its own layer ${kib(built[0]!.image.layer.size)}, manifest ${built[0]!.image.size} B)
R  registry on disk: base only ${mib(baseOnly)}; with ${2 * count} images ${mib(withImages)} (+${kib(withImages - baseOnly)});
   after deleting their manifests ${mib(afterDelete)}; after garbage collection ${mib(afterCollect)} (+${kib(afterCollect - baseOnly)} over base only)`);
} finally {
  await registry.stop();
}
