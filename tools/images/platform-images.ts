// The platform's images, assembled without Docker: api-controller, builder, runner,
// event-watcher and autoscaler, each its bundle (tools/build/bundle-app.ts) under /app/<service>
// on this machine's pinned Node, run as 65532:65532; and runner-base, the image lambda images are
// built on (tools/images/runner-base-image.ts). The Dockerfile at the repository's root describes
// the same files for those who build with Docker; tools/images/dockerfile.test.ts keeps the two
// in step through SERVICE_IMAGES.
//
//   npm run images -- --registry 127.0.0.1:5000/kublambda [--tag T] [--push [--user U --password P] [--insecure]]
//
// The registry is a host with an optional path prefix; images are <registry>/<service>:<tag>. A
// scheme may be given (http://, https://); without one it is https, except on loopback (127.x,
// localhost, [::1]), where it is http, as Docker assumes for such registries.
// Prints one JSON line per image on stdout (reference, digest, sizes; the pushed reference with
// --push) and a table on stderr. Exit codes: 0 ok, 1 failed, 2 usage.
import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  BASE_IMAGE_ENV,
  BASE_IMAGE_NODE_PATH,
  collectBaseImageFiles,
  createImageLayer,
  imageFromLayers,
  OCI_LAYER_GZIP,
  pushImage,
  RegistryClient,
  type BlobSource,
  type CommandIo,
  type ImageData,
  type ImageLayer,
  type LayerFile,
} from '@kublambda/oci-image';
import { addProgram, createRunnerBaseImage, PRLIMIT, RUNNER_APP_DIR, RUNNER_BASE_ENV, RUNNER_ENTRYPOINT, runnerBaseImageFiles, TMP_DIRECTORIES } from './runner-base-image.ts';

const execFileAsync = promisify(execFile);
const workspaceRoot = path.resolve(import.meta.dirname, '../..');

/** The distroless convention for "nonroot": no name needed, as the images have no /etc/passwd. */
export const PLATFORM_USER = '65532:65532';

/** Where npm goes in the builder's image: where Node's own distribution puts it. */
export const NPM_PACKAGE_DIR = '/usr/local/lib/node_modules/npm';
/**
 * npm's own bin/npm-cli.js requires ../lib/cli.js and starts with `#!/usr/bin/env node`; the
 * image has neither /usr/bin/env nor a shell, so the builder's `npm` (found on PATH) is this
 * launcher, which the kernel runs with the image's node.
 */
export const NPM_LAUNCHER = `#!${BASE_IMAGE_NODE_PATH}\nrequire('${NPM_PACKAGE_DIR}/lib/cli.js')(process);\n`;
export const NPM_LAUNCHER_PATH = '/usr/local/bin/npm';

export const SERVICES = ['api-controller', 'builder', 'runner', 'event-watcher', 'autoscaler', 'runner-base'] as const;
export type Service = (typeof SERVICES)[number];

/** What one image holds and how it starts: the data both this assembler and the Dockerfile's test read. */
export interface ServiceImage {
  service: Service;
  /** The app bundled (apps/<app>) into dist/apps/<app>, whose files go under appDir. */
  app: string;
  appDir: string;
  entrypoint: string[];
  env: Readonly<Record<string, string>>;
  /** Absent: root. */
  user?: string;
  /** Files and trees of the workspace (after npm ci and bundling) copied to the same path under /. */
  workspacePaths: string[];
  /** Programs of this machine, copied with the libraries ldd names for them. */
  programs: string[];
  /** npm under NPM_PACKAGE_DIR and its launcher on PATH. */
  npm: boolean;
  /** Which bundle files: the .mjs files, or everything bundle-app.ts wrote (source maps too). */
  bundleFiles: 'modules' | 'all';
}

/**
 * The builder bundles lambdas with esbuild and type-checks them with TypeScript, both run from
 * node_modules (bundle-app.ts leaves them external), and found from /app/builder/main.mjs by
 * Node's lookup up to /node_modules. type-check.ts looks three directories above its bundle for
 * the workspace, which from /app/builder is /: node_modules/@types there, and the lambda API at
 * libs/lambda-api/src/index.ts (the one file lambdas may import from outside their source).
 * Found by tracing what a type check reads: TypeScript's lib files, @types/node and undici-types
 * (which @types/node imports), nothing else of @types (the check asks for `types: ['node']`).
 */
const BUILDER_WORKSPACE_PATHS = [
  'node_modules/esbuild',
  // esbuild's native binary, in the package for this platform (npm installs only that one).
  'node_modules/@esbuild',
  'node_modules/typescript',
  'node_modules/@types/node',
  'node_modules/undici-types',
  // The build board's pages: @bull-board/api finds them with require.resolve at run time.
  'node_modules/@bull-board/ui',
  'libs/lambda-api/src/index.ts',
];

function platformService(service: Exclude<Service, 'runner-base'>, extra: Partial<ServiceImage> = {}): ServiceImage {
  const appDir = `/app/${service}`;
  return {
    service,
    app: service,
    appDir,
    entrypoint: [BASE_IMAGE_NODE_PATH, `${appDir}/main.mjs`],
    env: BASE_IMAGE_ENV,
    user: PLATFORM_USER,
    workspacePaths: [],
    programs: [],
    npm: false,
    bundleFiles: 'modules',
    ...extra,
  };
}

/**
 * The six images. Source maps stay out of the platform's (the bundles are not minified, so stack
 * traces name readable lines, and Node reads maps only with --enable-source-maps); runner-base
 * keeps what it always shipped.
 */
export const SERVICE_IMAGES: Readonly<Record<Service, ServiceImage>> = {
  'api-controller': platformService('api-controller'),
  // npm installs lambdas' dependencies (install-dependencies.ts) and needs a home: without HOME
  // and without an /etc/passwd entry for the user, os.homedir() throws.
  builder: platformService('builder', { env: { ...BASE_IMAGE_ENV, HOME: '/tmp' }, workspacePaths: BUILDER_WORKSPACE_PATHS, npm: true }),
  // The pool runner: no KUBLAMBDA_STANDALONE_LAMBDA, which is runner-base's standalone mode.
  runner: platformService('runner', { programs: [PRLIMIT] }),
  'event-watcher': platformService('event-watcher'),
  autoscaler: platformService('autoscaler'),
  'runner-base': {
    service: 'runner-base',
    app: 'runner',
    appDir: RUNNER_APP_DIR,
    entrypoint: RUNNER_ENTRYPOINT,
    env: RUNNER_BASE_ENV,
    workspacePaths: [],
    programs: [PRLIMIT],
    npm: false,
    bundleFiles: 'all',
  },
};

export interface ImageLabelValues {
  source: string;
  version: string;
  revision: string;
}

/** The OCI annotations every image's config carries. */
export function imageLabels(service: Service, values: ImageLabelValues): Record<string, string> {
  return {
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.revision': values.revision,
    'org.opencontainers.image.source': values.source,
    'org.opencontainers.image.title': `kublambda-${service}`,
    'org.opencontainers.image.version': values.version,
  };
}

export interface AssembledImage {
  service: Service;
  image: ImageData;
  /** The image's layers, in order; a layer several images share is the same object. */
  layers: ImageLayer[];
}

/** What the images are made of, read from this machine and the workspace. */
export interface ImageInputs {
  /** Node and its libraries, for the platform images' first layer (shared by all five). */
  runtime: ReadonlyMap<string, LayerFile>;
  /** By service: the files of its own layer. */
  appFiles: ReadonlyMap<Exclude<Service, 'runner-base'>, ReadonlyMap<string, LayerFile>>;
  /** runner-base's one layer (runnerBaseImageFiles). */
  runnerBase: ReadonlyMap<string, LayerFile>;
}

/**
 * The images from their files. Pure: the same inputs and labels give the same digests. The five
 * platform images are two layers each: node with its libraries and /tmp (the same layer in all
 * five, so a registry stores it once), then the service's own files.
 */
export function assembleImages(inputs: ImageInputs, labels: ImageLabelValues, only: readonly Service[] = SERVICES): AssembledImage[] {
  let runtime: ImageLayer | undefined;
  return only.map((service) => {
    const labelSet = imageLabels(service, labels);
    if (service === 'runner-base') {
      const base = createRunnerBaseImage(inputs.runnerBase, labelSet);
      return { service, image: base.image, layers: [base.layer] };
    }
    const description = SERVICE_IMAGES[service];
    const files = inputs.appFiles.get(service);
    if (!files) throw new Error(`images: no files for ${service}`);
    runtime ??= createImageLayer(inputs.runtime, { directories: TMP_DIRECTORIES });
    const layers = [runtime, createImageLayer(files)];
    const image = imageFromLayers(
      layers.map((layer) => ({ descriptor: { mediaType: OCI_LAYER_GZIP, digest: layer.compressedDigest, size: layer.size }, diffId: layer.diffId })),
      {
        entrypoint: description.entrypoint,
        env: description.env,
        ...(description.user ? { user: description.user } : {}),
        labels: labelSet,
        createdBy: `kublambda: node and its shared libraries; the bundled ${service}`,
      },
    );
    return { service, image, layers };
  });
}

/** Bundles each app once (the five at the same time), with the bundler's output passed to log. */
export async function bundleApps(log: (text: string) => void): Promise<void> {
  const apps = [...new Set(SERVICES.map((service) => SERVICE_IMAGES[service].app))];
  await Promise.all(
    apps.map(async (app) => {
      const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(workspaceRoot, 'tools/build/bundle-app.ts')], { cwd: path.join(workspaceRoot, 'apps', app) });
      log(stdout + stderr);
    }),
  );
}

/** Reads every image's files from the workspace (bundled already) and this machine. */
export async function readImageInputs(): Promise<ImageInputs> {
  const runtime = await collectBaseImageFiles();
  const appFiles = new Map<Exclude<Service, 'runner-base'>, Map<string, LayerFile>>();
  for (const service of SERVICES) {
    if (service === 'runner-base') continue;
    appFiles.set(service, await serviceFiles(SERVICE_IMAGES[service]));
  }
  return { runtime, appFiles, runnerBase: await runnerBaseImageFiles() };
}

/** A platform image's own files: its bundle, programs, workspace paths and npm. */
async function serviceFiles(description: ServiceImage): Promise<Map<string, LayerFile>> {
  const files = new Map<string, LayerFile>();
  const bundleDir = path.join(workspaceRoot, 'dist/apps', description.app);
  for (const name of (await readdir(bundleDir)).sort()) {
    // Only what the bundler writes: not a partial file another bundling left behind.
    if (!(name.endsWith('.mjs') || (description.bundleFiles === 'all' && name.endsWith('.mjs.map')))) continue;
    await addFile(files, path.join(bundleDir, name), `${description.appDir}/${name}`);
  }
  if (!files.has(description.entrypoint[1]!)) throw new Error(`images: ${description.service}'s bundle has no ${path.basename(description.entrypoint[1]!)} in ${bundleDir}`);
  for (const program of description.programs) await addProgram(files, program);
  for (const workspacePath of description.workspacePaths) await addTree(files, path.join(workspaceRoot, workspacePath), `/${workspacePath}`);
  if (description.npm) {
    await addTree(files, await npmPackageRoot(), NPM_PACKAGE_DIR);
    files.set(NPM_LAUNCHER_PATH, { bytes: Buffer.from(NPM_LAUNCHER), mode: 0o755 });
  }
  return files;
}

/** 0755 if the file is executable, else 0644: the modes on disk follow the umask, the digest must not. */
async function addFile(files: Map<string, LayerFile>, source: string, target: string): Promise<void> {
  const stats = await lstat(source);
  files.set(target, { bytes: await readFile(source), mode: stats.mode & 0o111 ? 0o755 : 0o644 });
}

/**
 * A file, or a directory's files below target. Links are left out only in node_modules/.bin
 * (shortcuts for shells, which the images lack); anywhere else one is an error, as a layer here
 * holds files and directories only.
 */
async function addTree(files: Map<string, LayerFile>, source: string, target: string): Promise<void> {
  const stats = await lstat(source).catch((cause: unknown) => {
    throw new Error(`images: ${source} is missing (npm ci and bundling come first)`, { cause });
  });
  if (stats.isFile()) return addFile(files, source, target);
  if (stats.isSymbolicLink() && path.basename(path.dirname(source)) === '.bin') return;
  if (!stats.isDirectory()) throw new Error(`images: ${source} is neither a file nor a directory`);
  for (const name of (await readdir(source)).sort()) await addTree(files, path.join(source, name), path.posix.join(target, name));
}

/** This machine's npm (the one running `npm run images`, else the one on PATH). */
async function npmPackageRoot(): Promise<string> {
  const cli = process.env.npm_execpath ?? (await execFileAsync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' })).stdout.trim();
  const root = path.dirname(path.dirname(await realpath(cli)));
  const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { name?: string };
  if (manifest.name !== 'npm') throw new Error(`images: ${root} (from ${cli}) is not npm's package`);
  return root;
}

export interface RegistryPrefix {
  /** The registry's origin, scheme included, for the client. */
  url: string;
  /** host[:port], as image references name it. */
  host: string;
  /** The repository path before /<service>, possibly empty. */
  prefix: string;
  loopback: boolean;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/** `127.0.0.1:5000/kublambda`, `http://127.0.0.1:5000/kublambda` or `registry.example/team`. */
export function parseRegistryPrefix(text: string): RegistryPrefix {
  const hasScheme = /^[a-z]+:\/\//i.test(text);
  const bare = hasScheme ? text : `https://${text}`;
  const url = new URL(bare);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--registry ${text}: the scheme must be http or https`);
  if (url.search || url.hash || url.username) throw new Error(`--registry ${text}: give a host and a path, nothing else`);
  const loopback = LOOPBACK.test(url.hostname);
  const scheme = hasScheme ? url.protocol : loopback ? 'http:' : 'https:';
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
  if (prefix !== '' && !/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(prefix)) throw new Error(`--registry ${text}: ${prefix} is not a repository path (lower case, digits, . _ - and /)`);
  return { url: `${scheme}//${url.host}`, host: url.host, prefix, loopback };
}

export function repositoryOf(registry: RegistryPrefix, service: Service): string {
  return registry.prefix ? `${registry.prefix}/${service}` : service;
}

/** Where the labels' values come from: package.json's version, HEAD's commit, the origin remote. */
async function readLabelValues(source: string | undefined): Promise<ImageLabelValues> {
  const manifest = JSON.parse(await readFile(path.join(workspaceRoot, 'package.json'), 'utf8')) as { version: string };
  const git = async (...args: string[]) => (await execFileAsync('git', ['-C', workspaceRoot, ...args], { encoding: 'utf8' })).stdout.trim();
  const revision = await git('rev-parse', 'HEAD');
  const origin = source ?? (await git('remote', 'get-url', 'origin').catch(() => ''));
  if (!origin) throw new UsageError('no --source given and no origin remote to take org.opencontainers.image.source from');
  // A remote URL may carry credentials; a label is public.
  return { source: withoutCredentials(origin), version: manifest.version, revision };
}

function withoutCredentials(remote: string): string {
  try {
    const url = new URL(remote);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return remote; // scp-like (git@host:path): no password in it
  }
}

class UsageError extends Error {}

export interface ImageReport {
  service: Service;
  /** <host>/<repo>:<tag> */
  reference: string;
  /** The manifest's digest, computed here; a push answers with the same. */
  digest: string;
  /** Of the layers, as stored and pulled. */
  compressedSize: number;
  /** Of the layers' tars. */
  uncompressedSize: number;
  /** With --push: <host>/<repo>@<digest>. */
  pushed?: string;
}

const USAGE = `usage: npm run images -- --registry HOST[:PORT][/PREFIX] [--tag TAG] [--push] [--user U --password P] [--insecure] [--source URL] [--service NAME]...

  --registry   where the images are named (and pushed): <registry>/<service>:<tag>; a scheme (http://, https://)
               may be given, without one https is used, or http on loopback
  --tag        default package.json's version
  --push       push the images; without it they are only assembled and reported
  --insecure   allow a plain http registry off loopback
  --source     org.opencontainers.image.source; default the origin remote's URL
  --service    only this image (repeatable): ${SERVICES.join(', ')}

Prints one JSON line per image on stdout and a table on stderr. Exit codes: 0 ok, 1 failed, 2 usage.

examples:
  npm run images -- --registry 127.0.0.1:5000/kublambda
  npm run images -- --registry http://127.0.0.1:5000/kublambda --push --user kublambda --password secret --tag dev`;

/** The command without a process: returns the exit code. */
export async function runPlatformImages(argv: string[], io: CommandIo): Promise<number> {
  let values: ReturnType<typeof parseOptions>;
  let registry: RegistryPrefix;
  let services: Service[];
  try {
    values = parseOptions(argv);
    if (values.help) {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    if (!values.registry) throw new UsageError('missing --registry');
    registry = parseRegistryPrefix(values.registry);
    services = (values.service ?? [...SERVICES]).map((name) => {
      if (!(SERVICES as readonly string[]).includes(name)) throw new UsageError(`--service ${name}: not one of ${SERVICES.join(', ')}`);
      return name as Service;
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    requireNode26();
    const started = Date.now();
    const labels = await readLabelValues(values.source);
    const tag = values.tag ?? labels.version;
    const client = values.push
      ? new RegistryClient({
          url: registry.url,
          ...(values.user !== undefined ? { username: values.user, password: values.password ?? '' } : {}),
          insecure: values.insecure === true || (registry.url.startsWith('http:') && registry.loopback),
        })
      : undefined;
    await bundleApps(io.stderr);
    io.stderr(`bundled in ${Date.now() - started} ms\n`);
    const images = assembleImages(await readImageInputs(), labels, services);
    io.stderr(`assembled in ${Date.now() - started} ms\n`);
    const reports: ImageReport[] = [];
    // A layer pushed once is mounted into the other repositories rather than uploaded again.
    const pushedIn = new Map<string, string>();
    for (const { service, image, layers } of images) {
      const repo = repositoryOf(registry, service);
      const report: ImageReport = {
        service,
        reference: `${registry.host}/${repo}:${tag}`,
        digest: image.manifestDigest,
        compressedSize: layers.reduce((sum, layer) => sum + layer.size, 0),
        uncompressedSize: layers.reduce((sum, layer) => sum + layer.uncompressedSize, 0),
      };
      if (client) {
        const sources = new Map<string, BlobSource>(
          layers.map((layer) => {
            const mountFrom = pushedIn.get(layer.compressedDigest);
            return [layer.compressedDigest, { read: async () => layer.compressed, ...(mountFrom ? { mountFrom } : {}) }];
          }),
        );
        const pushed = await pushImage(client, { repo, tag }, image, sources);
        if (pushed.digest !== image.manifestDigest) throw new Error(`${repo}:${tag}: the registry named the manifest ${pushed.digest}, not ${image.manifestDigest}`);
        for (const layer of layers) if (!pushedIn.has(layer.compressedDigest)) pushedIn.set(layer.compressedDigest, repo);
        report.pushed = pushed.reference;
      }
      reports.push(report);
      io.stdout(`${JSON.stringify(report)}\n`);
    }
    io.stderr(`${formatTable(reports)}${client ? 'pushed' : 'assembled'} ${reports.length} images in ${Date.now() - started} ms\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    io.stderr(`images: ${(error as Error).message}\n`);
    return 1;
  }
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      registry: { type: 'string' },
      tag: { type: 'string' },
      push: { type: 'boolean' },
      user: { type: 'string' },
      password: { type: 'string' },
      insecure: { type: 'boolean' },
      source: { type: 'string' },
      service: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
}

/** The images carry the Node running this: the workspace's pinned one (npm scripts run it), not an older one of the machine's. */
function requireNode26(): void {
  if (process.versions.node.split('.')[0] !== '26') throw new Error(`running on Node ${process.version}; the images carry the Node that runs this, which must be 26: run it with npm run images`);
}

function formatTable(reports: ImageReport[]): string {
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  const rows = [['IMAGE', 'DIGEST', 'COMPRESSED', 'UNCOMPRESSED'], ...reports.map((report) => [report.reference, report.digest.slice(0, 19), mib(report.compressedSize), mib(report.uncompressedSize)])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n') + '\n';
}

if (import.meta.main) {
  process.exitCode = await runPlatformImages(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
