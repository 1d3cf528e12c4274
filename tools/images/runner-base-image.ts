// The runner base image, assembled without Docker: this machine's pinned Node and the libraries
// it loads, prlimit (util-linux) and its libraries (the runner sets each worker's memory limit
// with it), and the bundled runner (dist/apps/runner, bundled first when missing) under
// /app/runner. Started with no arguments it is the standalone runner of the lambda whose
// lambda.json and lambda.mjs an image built on it adds under /lambda (libs/route-table standalone.ts).
//
//   node tools/images/runner-base-image.ts --registry http://127.0.0.1:5000 --user U --password P \
//     --repo kublambda/runner-base --tag dev [--rebundle] [--insecure]
//
// Prints {repo, digest, reference} as JSON on stdout; diagnostics on stderr.
// Exit codes: 0 pushed, 1 failed, 2 usage.
import { execFile } from 'node:child_process';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { BASE_IMAGE_ENV, BASE_IMAGE_NODE_PATH, collectBaseImageFiles, createImageLayer, imageFromLayers, OCI_LAYER_GZIP, parseLddOutput, pushBaseImage, RegistryClient, type BaseImage, type LayerFile } from '@kublambda/oci-image';
import { STANDALONE_LAMBDA_ENV, STANDALONE_LAMBDA_FILE } from '@kublambda/route-table';

const execFileAsync = promisify(execFile);
const workspaceRoot = path.resolve(import.meta.dirname, '../..');
const bundleDir = path.join(workspaceRoot, 'dist/apps/runner');

/** Where the bundled runner lives in the image; its workers read worker-host.mjs beside main.mjs. */
export const RUNNER_APP_DIR = '/app/runner';
export const RUNNER_ENTRYPOINT = [BASE_IMAGE_NODE_PATH, `${RUNNER_APP_DIR}/main.mjs`];
export const RUNNER_BASE_ENV: Readonly<Record<string, string>> = { ...BASE_IMAGE_ENV, [STANDALONE_LAMBDA_ENV]: STANDALONE_LAMBDA_FILE };
/** The runner runs it (found on PATH) to limit each worker's memory. */
const PRLIMIT = '/usr/bin/prlimit';
/**
 * Workers make their private directories in /tmp (os.tmpdir()). A layer holds files, their
 * directories made 0755, so /tmp comes from an empty file in it: writable by root, as the
 * runner runs in the image; a pod running it as another user mounts an emptyDir there.
 */
const TMP_PLACEHOLDER = '/tmp/.kublambda';

export interface RunnerBaseImageOptions {
  /** Bundle apps/runner even if dist/apps/runner/main.mjs exists (it may be older than the source). */
  rebundle?: boolean;
  /** Diagnostics, such as the bundler's output. */
  log?: (text: string) => void;
}

/** The base image's files: node and its libraries, prlimit and its libraries, /tmp, /app/runner/*. */
export async function runnerBaseImageFiles(options: RunnerBaseImageOptions = {}): Promise<Map<string, LayerFile>> {
  await ensureRunnerBundle(options);
  const files = await collectBaseImageFiles();
  await addProgram(files, PRLIMIT);
  files.set(TMP_PLACEHOLDER, { bytes: new Uint8Array(), mode: 0o644 });
  for (const name of (await readdir(bundleDir)).sort()) {
    const file = path.join(bundleDir, name);
    const stats = await stat(file);
    if (stats.isFile()) files.set(`${RUNNER_APP_DIR}/${name}`, { bytes: await readFile(file), mode: stats.mode & 0o777 });
  }
  return files;
}

/** One layer of the files; the runner as the entrypoint, standalone on /lambda/lambda.json. Pure. */
export function createRunnerBaseImage(files: ReadonlyMap<string, LayerFile>): BaseImage {
  const layer = createImageLayer(files);
  const image = imageFromLayers([{ descriptor: { mediaType: OCI_LAYER_GZIP, digest: layer.compressedDigest, size: layer.size }, diffId: layer.diffId }], {
    entrypoint: RUNNER_ENTRYPOINT,
    env: RUNNER_BASE_ENV,
    createdBy: 'kublambda: node, its shared libraries, prlimit and the bundled runner',
  });
  return { image, layer };
}

async function ensureRunnerBundle(options: RunnerBaseImageOptions): Promise<void> {
  const bundled = await access(path.join(bundleDir, 'main.mjs')).then(() => true, () => false);
  if (bundled && !options.rebundle) return;
  const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(workspaceRoot, 'tools/build/bundle-app.ts')], { cwd: path.join(workspaceRoot, 'apps/runner') });
  options.log?.(stdout + stderr);
}

/** A program and the libraries ldd names for it, at their paths. */
async function addProgram(files: Map<string, LayerFile>, program: string): Promise<void> {
  files.set(program, { bytes: await readFile(program), mode: 0o755 });
  const { stdout } = await execFileAsync('ldd', [program], { encoding: 'utf8' });
  for (const library of parseLddOutput(stdout, program)) {
    if (!files.has(library)) files.set(library, { bytes: await readFile(library), mode: (await stat(library)).mode & 0o777 });
  }
}

const USAGE = `usage: runner-base-image --registry URL --user U --password P --repo REPO --tag TAG [--rebundle] [--insecure]

  --rebundle   bundle apps/runner again even if dist/apps/runner/main.mjs exists
  --insecure   allow a plain http registry (implied for http on loopback)

example:
  node tools/images/runner-base-image.ts --registry http://127.0.0.1:5000 --user kublambda --password secret \\
    --repo kublambda/runner-base --tag dev`;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The command without a process: returns the exit code. */
export async function runRunnerBaseImage(argv: string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        registry: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        repo: { type: 'string' },
        tag: { type: 'string' },
        rebundle: { type: 'boolean' },
        insecure: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const missing = (['registry', 'repo', 'tag'] as const).filter((name) => !values[name]);
  if (missing.length > 0) {
    io.stderr(`missing ${missing.map((name) => `--${name}`).join(', ')}\n${USAGE}\n`);
    return 2;
  }
  try {
    const url = new URL(values.registry!);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    const registry = new RegistryClient({
      url: url.origin,
      ...(values.user !== undefined ? { username: values.user, password: values.password ?? '' } : {}),
      insecure: values.insecure === true || (url.protocol === 'http:' && loopback),
    });
    const started = Date.now();
    const files = await runnerBaseImageFiles({ rebundle: values.rebundle === true, log: io.stderr });
    const base = createRunnerBaseImage(files);
    io.stderr(`assembled ${files.size} files, layer ${base.layer.size} bytes compressed, in ${Date.now() - started} ms\n`);
    const pushed = await pushBaseImage(registry, { repo: values.repo!, tag: values.tag! }, base);
    io.stderr(`pushed in ${Date.now() - started} ms\n`);
    io.stdout(`${JSON.stringify({ repo: values.repo, digest: pushed.digest, reference: pushed.reference }, null, 2)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`runner-base-image: ${(error as Error).message}\n`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await runRunnerBaseImage(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
