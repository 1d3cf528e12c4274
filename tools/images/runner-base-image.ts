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
import { promisify } from 'node:util';
import { BASE_IMAGE_ENV, BASE_IMAGE_NODE_PATH, collectBaseImageFiles, createImageLayer, imageFromLayers, OCI_LAYER_GZIP, parseLddOutput, runBaseImageCommand, type BaseImage, type CommandIo, type LayerFile } from '@kublambda/oci-image';
import { STANDALONE_LAMBDA_ENV, STANDALONE_LAMBDA_FILE } from '@kublambda/route-table';

const execFileAsync = promisify(execFile);
const workspaceRoot = path.resolve(import.meta.dirname, '../..');
/** Where tools/build/bundle-app.ts writes the runner's bundle. */
export const RUNNER_BUNDLE_DIR = path.join(workspaceRoot, 'dist/apps/runner');

/** Where the bundled runner lives in the image; its workers read worker-host.mjs beside main.mjs. */
export const RUNNER_APP_DIR = '/app/runner';
export const RUNNER_ENTRYPOINT = [BASE_IMAGE_NODE_PATH, `${RUNNER_APP_DIR}/main.mjs`];
export const RUNNER_BASE_ENV: Readonly<Record<string, string>> = { ...BASE_IMAGE_ENV, [STANDALONE_LAMBDA_ENV]: STANDALONE_LAMBDA_FILE };
/** The runner runs it (found on PATH) to limit each worker's memory. */
export const PRLIMIT = '/usr/bin/prlimit';
/**
 * Workers make their private directories in /tmp (os.tmpdir()): a directory anyone may write
 * to (sticky, as /tmp is everywhere), so the image also serves a pod running as another user.
 */
export const TMP_DIRECTORIES: Readonly<Record<string, number>> = { '/tmp': 0o1777 };

export interface RunnerBaseImageOptions {
  /** Bundle apps/runner even if dist/apps/runner/main.mjs exists (it may be older than the source). */
  rebundle?: boolean;
  /** Diagnostics, such as the bundler's output. */
  log?: (text: string) => void;
}

/** The base image's files: node and its libraries, prlimit and its libraries, /app/runner/*. */
export async function runnerBaseImageFiles(options: RunnerBaseImageOptions = {}): Promise<Map<string, LayerFile>> {
  await ensureRunnerBundle(options);
  const files = await collectBaseImageFiles();
  await addProgram(files, PRLIMIT);
  for (const name of (await readdir(RUNNER_BUNDLE_DIR)).sort()) {
    const file = path.join(RUNNER_BUNDLE_DIR, name);
    const stats = await stat(file);
    if (stats.isFile()) files.set(`${RUNNER_APP_DIR}/${name}`, { bytes: await readFile(file), mode: stats.mode & 0o777 });
  }
  return files;
}

/**
 * One layer of the files and /tmp; the runner as the entrypoint, standalone on
 * /lambda/lambda.json; the labels, if given, in its config. Pure.
 */
export function createRunnerBaseImage(files: ReadonlyMap<string, LayerFile>, labels?: Readonly<Record<string, string>>): BaseImage {
  const layer = createImageLayer(files, { directories: TMP_DIRECTORIES });
  const image = imageFromLayers([{ descriptor: { mediaType: OCI_LAYER_GZIP, digest: layer.compressedDigest, size: layer.size }, diffId: layer.diffId }], {
    entrypoint: RUNNER_ENTRYPOINT,
    env: RUNNER_BASE_ENV,
    createdBy: 'kublambda: node, its shared libraries, prlimit and the bundled runner',
    ...(labels ? { labels } : {}),
  });
  return { image, layer };
}

async function ensureRunnerBundle(options: RunnerBaseImageOptions): Promise<void> {
  const bundled = await access(path.join(RUNNER_BUNDLE_DIR, 'main.mjs')).then(() => true, () => false);
  if (bundled && !options.rebundle) return;
  const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(workspaceRoot, 'tools/build/bundle-app.ts')], { cwd: path.join(workspaceRoot, 'apps/runner') });
  options.log?.(stdout + stderr);
}

/** A program and the libraries ldd names for it, at their paths. */
export async function addProgram(files: Map<string, LayerFile>, program: string): Promise<void> {
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

/** The command without a process: returns the exit code. */
export function runRunnerBaseImage(argv: string[], io: CommandIo): Promise<number> {
  return runBaseImageCommand(argv, io, {
    name: 'runner-base-image',
    usage: USAGE,
    options: { rebundle: { type: 'boolean' } },
    assemble: async (values, log) => {
      const files = await runnerBaseImageFiles({ rebundle: values.rebundle === true, log });
      return { files, base: createRunnerBaseImage(files) };
    },
    describe: (pushed, repo) => ({ repo, digest: pushed.digest, reference: pushed.reference }),
  });
}

if (import.meta.main) {
  process.exitCode = await runRunnerBaseImage(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
