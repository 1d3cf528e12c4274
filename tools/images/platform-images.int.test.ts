// The platform's images end to end: `npm run images -- --push` (as a function) into a real
// registry, Debian's docker-registry from startRegistry() on loopback behind htpasswd; each
// image's manifest and config read back; each image pulled and unpacked (unpackImage), its
// entrypoint present and its node run. The runner image's entrypoint then runs as 65532:65532
// against a loopback Redis (the runner's own Redis user) and S3 server, and serves a lambda
// published the way api-controller does it. The builder image's esbuild, TypeScript and npm
// are run there too, as that user. What stands in for a container runtime: `chroot` into the
// unpacked layers with /proc mounted and /dev/null made (no namespaces, cgroups or overlay
// filesystem; the test runs as root, the processes in the chroot do not).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, startRegistry, waitUntil, type OciRegistry } from '@kublambda/dev-servers';
import { RegistryClient, unpackImage, type ImageConfigJson, type ImageManifestJson } from '@kublambda/oci-image';
import { startRunnerBackends, type RunnerBackends } from '../../apps/runner/src/runner-process.testing.ts';
import { imageLabels, runPlatformImages, SERVICE_IMAGES, SERVICES, type ImageReport, type Service } from './platform-images.ts';
import { hostCommand, RuntimeMounts, stopRunner } from './chroot.testing.ts';

const execFileAsync = promisify(execFile);
const PREFIX = 'kublambda';
const TAG = 'test';
const SOURCE = 'https://example.com/kublambda.git';
const USER = '65532:65532';

let registry: OciRegistry;
let client: RegistryClient;
let backends: RunnerBackends;
let reports: Map<Service, ImageReport>;
let revision: string;
const rootfsDirs = new Map<Service, string>();
const mounts = new RuntimeMounts();
let runner: ChildProcess | undefined;
const runnerOutput: string[] = [];

/** Runs a command of the image as 65532:65532, with the image's env (and more), to its end. */
async function inImage(service: Service, config: ImageConfigJson, command: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(await hostCommand('chroot'), [`--userspec=${USER}`, rootfsDirs.get(service)!, ...command], { env: { ...imageEnv(config), ...env }, encoding: 'utf8', timeout: 30_000 });
}

function imageEnv(config: ImageConfigJson): Record<string, string> {
  return Object.fromEntries((config.config?.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
}

async function imageConfig(service: Service): Promise<{ manifest: ImageManifestJson; config: ImageConfigJson }> {
  const repo = `${PREFIX}/${service}`;
  const manifest = JSON.parse((await client.getManifest(repo, TAG)).bytes.toString()) as ImageManifestJson;
  const config = JSON.parse((await client.getBlob(repo, manifest.config.digest)).toString()) as ImageConfigJson;
  return { manifest, config };
}

beforeAll(async () => {
  const started = Date.now();
  [registry, backends, revision] = await Promise.all([
    startRegistry(),
    startRunnerBackends(),
    execFileAsync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).then(({ stdout }) => stdout.trim()),
  ]);
  client = new RegistryClient({ url: registry.url, username: registry.username, password: registry.password, insecure: true });
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPlatformImages(
    ['--registry', `${registry.url}/${PREFIX}`, '--push', '--user', registry.username, '--password', registry.password, '--tag', TAG, '--source', SOURCE],
    { stdout: (text) => out.push(text), stderr: (text) => err.push(text) },
  );
  if (code !== 0) throw new Error(`npm run images exited ${code}:\n${err.join('')}`);
  reports = new Map(
    out
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ImageReport)
      .map((report) => [report.service, report]),
  );
  console.log(`npm run images --push: ${Date.now() - started} ms; it said:\n${err.join('')}`);
}, 240_000);

afterAll(async () => {
  if (runner) await stopRunner(runner);
  await mounts.undo();
  for (const dir of rootfsDirs.values()) await rm(dir, { recursive: true, force: true });
  await backends?.stop();
  await registry?.stop();
}, 60_000);

describe('npm run images --push', () => {
  it('pushes the six images, each under its digest computed before the push', () => {
    expect([...reports.keys()]).toEqual([...SERVICES]);
    for (const [service, report] of reports) {
      expect(report).toEqual({
        service,
        reference: `${registry.host}/${PREFIX}/${service}:${TAG}`,
        digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        compressedSize: expect.any(Number),
        uncompressedSize: expect.any(Number),
        pushed: `${registry.host}/${PREFIX}/${service}@${report.digest}`,
      });
    }
  });

  it.each(SERVICES.map((service) => [service]))('%s: manifest and config as described: user, labels, entrypoint, env', async (service) => {
    const { manifest, config } = await imageConfig(service);
    expect((await client.getManifest(`${PREFIX}/${service}`, TAG)).digest).toBe(reports.get(service)!.digest);
    expect(manifest.layers.reduce((sum, layer) => sum + layer.size, 0)).toBe(reports.get(service)!.compressedSize);
    const description = SERVICE_IMAGES[service];
    expect(config.config?.User).toBe(description.user);
    expect(config.config?.Labels).toEqual(imageLabels(service, { source: SOURCE, version: '0.1.0', revision }));
    expect(config.config?.Entrypoint).toEqual(description.entrypoint);
    expect(imageEnv(config)).toEqual(description.env);
    if (service === 'runner') expect(imageEnv(config)).not.toHaveProperty('KUBLAMBDA_STANDALONE_LAMBDA');
  });

  it.each(SERVICES.map((service) => [service]))('%s: unpacked, has its entrypoint, and its node is 26, run as 65532', async (service) => {
    const { config } = await imageConfig(service);
    const rootfs = await mkdtemp(path.join(os.tmpdir(), `platform-image-${service}-`));
    rootfsDirs.set(service, rootfs);
    // mkdtemp makes it 0700; a container's / is open to all.
    await chmod(rootfs, 0o755);
    await unpackImage(client, `${PREFIX}/${service}`, TAG, rootfs);
    const [node, script] = config.config!.Entrypoint!;
    expect((await stat(path.join(rootfs, script!))).isFile()).toBe(true);
    expect(((await stat(path.join(rootfs, 'tmp'))).mode & 0o7777).toString(8)).toBe('1777');
    const { stdout } = await inImage(service, config, [node!, '--version']);
    expect(stdout.trim()).toMatch(/^v26\./);
    // Only the runner and the builder are run further: the others' unpacked files go now.
    if (service !== 'runner' && service !== 'builder') {
      await rm(rootfs, { recursive: true, force: true });
      rootfsDirs.delete(service);
    }
  }, 60_000);

  it('builder: esbuild bundles and TypeScript checks a lambda importing the lambda API, and npm installs, as 65532', async () => {
    const rootfs = rootfsDirs.get('builder')!;
    const { config } = await imageConfig('builder');
    await mkdir(path.join(rootfs, 'tmp/lambda/src'), { recursive: true });
    await writeFile(path.join(rootfs, 'tmp/lambda/src/index.ts'), "import type { Handler } from '@kublambda/lambda-api';\nconst handler: Handler = async () => new Response(Buffer.from('hi').toString());\nexport default handler;\n");
    await writeFile(path.join(rootfs, 'tmp/lambda/src/package.json'), JSON.stringify({ name: 'lambda', version: '1.0.0', private: true }));
    // What bundle-source.ts and type-check.ts do with them, from the image's / (the workspace root from /app/builder).
    const check = `
      import { build } from 'esbuild';
      import ts from 'typescript';
      const result = await build({ entryPoints: ['/tmp/lambda/src/index.ts'], bundle: true, write: false, platform: 'node', format: 'esm' });
      const options = { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2024, lib: ['lib.es2024.d.ts'], module: ts.ModuleKind.ESNext,
        moduleResolution: ts.ModuleResolutionKind.Bundler, types: ['node'], typeRoots: ['/node_modules/@types'], paths: { '@kublambda/lambda-api': ['/libs/lambda-api/src/index.ts'] } };
      const program = ts.createProgram({ rootNames: ['/tmp/lambda/src/index.ts'], options });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\\n'));
      console.log(JSON.stringify({ bundled: result.outputFiles[0].text.includes('hi'), diagnostics }));`;
    const { stdout } = await inImage('builder', config, ['/usr/local/bin/node', '--input-type=module', '-e', check]);
    expect(JSON.parse(stdout)).toEqual({ bundled: true, diagnostics: [] });
    // What the bundle itself resolves at run time, from where it is.
    const resolve = "const r = require('node:module').createRequire('/app/builder/main.mjs'); console.log(JSON.stringify(['esbuild', 'typescript', '@bull-board/ui/package.json'].map((name) => r.resolve(name))))";
    expect(JSON.parse((await inImage('builder', config, ['/usr/local/bin/node', '-e', resolve])).stdout)).toEqual([
      '/node_modules/esbuild/lib/main.js',
      '/node_modules/typescript/lib/typescript.js',
      '/node_modules/@bull-board/ui/package.json',
    ]);
    // npm found on PATH, as install-dependencies.ts runs it, with its options (--prefix for its cwd,
    // which chroot does not set; --offline: a package.json without dependencies needs no registry).
    const npm = await inImage('builder', config, ['npm', '--version']);
    expect(npm.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const install = ['npm', 'install', '--prefix', '/tmp/lambda/src', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--offline', '--cache', '/tmp/npm-cache'];
    await inImage('builder', config, install).catch((error: unknown) => {
      throw new Error(`npm install in the builder image failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
    });
  }, 60_000);

  it('runner: its entrypoint, as 65532 with a fresh /tmp, follows the routes in Redis and serves a lambda over HTTP', async () => {
    const rootfs = rootfsDirs.get('runner')!;
    const { config } = await imageConfig('runner');
    await mounts.provide(rootfs);
    // As an emptyDir mounted there would be: empty, open to all, sticky.
    await rm(path.join(rootfs, 'tmp'), { recursive: true, force: true });
    await mkdir(path.join(rootfs, 'tmp'));
    await chmod(path.join(rootfs, 'tmp'), 0o1777);
    await backends.publishRoute('export default async (request) => new Response(`hello from ${new URL(request.url).pathname}`);', { namespace: 'shop', name: 'hello', pathPrefix: '/hello' });

    const port = await freePort();
    const child = spawn(await hostCommand('chroot'), [`--userspec=${USER}`, rootfs, ...config.config!.Entrypoint!], {
      cwd: '/',
      env: { ...imageEnv(config), ...backends.runnerEnv('/tmp/assets'), HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    runner = child;
    child.stdout!.on('data', (chunk: Buffer) => runnerOutput.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => runnerOutput.push(chunk.toString()));
    child.on('error', (error) => runnerOutput.push(`spawn: ${error.message}`));
    const base = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the runner in the chroot to listen and have the route',
      async () => {
        if (child.exitCode !== null) throw new Error(`the runner exited (code ${child.exitCode}):\n${runnerOutput.join('')}`);
        if (!runnerOutput.join('').includes('"message":"listening"')) return false;
        return ((await (await fetch(`${base}/readyz`)).json()) as { routes: number }).routes >= 1;
      },
      { intervalMs: 50, timeoutMs: 60_000 },
    );
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const response = await fetch(`${base}/hello/world`);
    const body = await response.text();
    if (response.status !== 200) throw new Error(`the lambda answered ${response.status} ${body}; the runner's output:\n${runnerOutput.join('')}`);
    expect(body).toBe('hello from /world');
    expect(runnerOutput.join('')).not.toContain('"mode":"standalone"');
    // chroot execs the entrypoint in its own process: the runner runs as the image's user, not root.
    expect(await readFile(`/proc/${child.pid}/status`, 'utf8')).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
  }, 90_000);
});
