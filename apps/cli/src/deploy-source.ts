// What `kublambda deploy <file|dir>` sends: a Lambda made from a source file, a source
// directory, or a Lambda manifest, with the command line's options on top. Reading the files
// is apart from making the Lambda, which is pure.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { LAMBDA_API_VERSION, LAMBDA_KIND, type Lambda, type LambdaSpec } from '@kublambda/crd-types';
import { UsageError } from './command-line.ts';

export const CODE_EXTENSIONS = ['.ts', '.mts', '.tsx', '.js', '.mjs', '.jsx'];
const MANIFEST_NAMES = ['lambda.yaml', 'lambda.yml'];
/** Entry files looked for, in order, when neither the manifest nor --entrypoint names one. */
const ENTRY_CANDIDATES = ['index.ts', 'handler.ts', 'index.mts', 'index.js', 'handler.js', 'index.mjs', 'handler.mjs'];
const MAX_FILES = 64;
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'build', 'coverage']);
const NAME_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export interface DeployOptions {
  name?: string;
  path?: string;
  host?: string;
  memory?: number;
  timeout?: number;
  env: string[];
  entrypoint?: string;
  typeCheck?: boolean;
}

/** What was found at the path given to deploy. */
export type DeploySource =
  | { kind: 'file'; file: string; content: string }
  | { kind: 'directory'; dir: string; files: Record<string, string>; manifest?: Lambda; manifestFile?: string }
  | { kind: 'manifest'; manifestFile: string; manifest: Lambda };

export async function readDeploySource(target: string): Promise<DeploySource> {
  let info;
  try {
    info = await stat(target);
  } catch {
    throw new UsageError(`${target}: no such file or directory`);
  }
  if (info.isFile()) {
    const extension = path.extname(target);
    if (extension === '.yaml' || extension === '.yml') return { kind: 'manifest', manifestFile: target, manifest: parseManifest(await readFile(target, 'utf8'), target) };
    if (!CODE_EXTENSIONS.includes(extension)) throw new UsageError(`${target}: deploy takes a ${CODE_EXTENSIONS.join(' ')} file, a Lambda manifest (.yaml) or a directory`);
    return { kind: 'file', file: target, content: await readFile(target, 'utf8') };
  }
  if (!info.isDirectory()) throw new UsageError(`${target}: not a file or directory`);
  const files = await readSourceTree(target);
  for (const candidate of MANIFEST_NAMES) {
    const manifestFile = path.join(target, candidate);
    const text = await readFile(manifestFile, 'utf8').catch(() => undefined);
    if (text !== undefined) return { kind: 'directory', dir: target, files, manifest: parseManifest(text, manifestFile), manifestFile };
  }
  return { kind: 'directory', dir: target, files };
}

/** The source files of a directory: code, package.json and other .json, by relative path; no dot files, node_modules or manifests. */
async function readSourceTree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const entry of (await readdir(path.join(dir, relative), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) await walk(child);
      } else if (entry.isFile() && isSourceFile(entry.name)) {
        if (Object.keys(files).length >= MAX_FILES) throw new UsageError(`${dir}: more than ${MAX_FILES} source files (the most spec.source.files holds)`);
        files[child] = await readFile(path.join(dir, child), 'utf8');
      }
    }
  };
  await walk('');
  return files;
}

function isSourceFile(name: string): boolean {
  return CODE_EXTENSIONS.includes(path.extname(name)) || path.extname(name) === '.json';
}

export function parseManifest(text: string, file: string): Lambda {
  let documents: unknown[];
  try {
    documents = YAML.parseAllDocuments(text).map((document) => {
      if (document.errors.length > 0) throw document.errors[0];
      return document.toJS() as unknown;
    }).filter((document) => document !== null && document !== undefined);
  } catch (error) {
    throw new UsageError(`${file}: not valid YAML: ${(error as Error).message}`);
  }
  if (documents.length !== 1) throw new UsageError(`${file}: expected one Lambda, found ${documents.length} documents`);
  const manifest = documents[0] as Partial<Lambda>;
  if (manifest.kind !== LAMBDA_KIND || manifest.apiVersion !== LAMBDA_API_VERSION) {
    throw new UsageError(`${file}: expected apiVersion ${LAMBDA_API_VERSION} and kind ${LAMBDA_KIND}, found ${manifest.apiVersion ?? '(none)'} ${manifest.kind ?? '(none)'}`);
  }
  return manifest as Lambda;
}

/** The Lambda deploy applies, from what was read and the command line. */
export function lambdaForDeploy(source: DeploySource, options: DeployOptions): Lambda {
  const manifest = source.kind === 'file' ? undefined : source.manifest;
  const fallbackName = source.kind === 'file' ? path.basename(source.file, path.extname(source.file)) : source.kind === 'directory' ? path.basename(path.resolve(source.dir)) : undefined;
  const name = options.name ?? manifest?.metadata?.name ?? fallbackName;
  if (!name) throw new UsageError(`${source.kind === 'manifest' ? source.manifestFile : 'the manifest'} has no metadata.name: give --name`);
  if (name.length > 53 || !NAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" cannot name a Lambda: at most 53 characters of lowercase letters, digits and '-', starting with a letter${options.name ? '' : ' (give --name)'}`);
  }
  const spec: Partial<LambdaSpec> = structuredClone(manifest?.spec ?? {});
  if (source.kind === 'file') {
    // Saved under its own file name, so compile errors point at the file the user has.
    spec.source = { inline: source.content };
    spec.entrypoint = options.entrypoint ?? path.basename(source.file);
    if (!spec.triggers) spec.triggers = { http: {} };
  } else if (source.kind === 'directory' && !spec.source) {
    // A manifest without spec.source takes the files beside it.
    if (Object.keys(source.files).length === 0) throw new UsageError(`${source.dir}: no source files (${CODE_EXTENSIONS.join(' ')}) in it`);
    spec.source = { files: source.files };
    spec.entrypoint = options.entrypoint ?? spec.entrypoint ?? chooseEntrypoint(source.files, source.dir);
    if (!manifest && !spec.triggers) spec.triggers = { http: {} };
  } else if (options.entrypoint) {
    spec.entrypoint = options.entrypoint;
  }
  if (options.path !== undefined || options.host !== undefined) {
    spec.triggers = { ...spec.triggers, http: { ...spec.triggers?.http, ...(options.path !== undefined ? { path: options.path } : {}), ...(options.host !== undefined ? { host: options.host } : {}) } };
  }
  if (options.memory !== undefined) spec.memoryMiB = options.memory;
  if (options.timeout !== undefined) spec.timeoutSeconds = options.timeout;
  if (options.typeCheck !== undefined) spec.build = { ...spec.build, typeCheck: options.typeCheck };
  if (options.env.length > 0) {
    const env = [...(spec.env ?? [])];
    for (const [envName, value] of options.env.map(parseEnvAssignment)) {
      const at = env.findIndex((e) => e.name === envName);
      if (at >= 0) env[at] = { name: envName, value };
      else env.push({ name: envName, value });
    }
    spec.env = env;
  }
  const metadata = { ...(manifest?.metadata ?? {}), name };
  // Applied with the CLI's field manager: only what is set here is owned by it.
  delete (metadata as { namespace?: string }).namespace;
  delete (metadata as { resourceVersion?: string }).resourceVersion;
  return { apiVersion: LAMBDA_API_VERSION, kind: LAMBDA_KIND, metadata, spec: spec as LambdaSpec } as Lambda;
}

export function chooseEntrypoint(files: Record<string, string>, dir: string): string {
  const found = ENTRY_CANDIDATES.find((candidate) => candidate in files);
  if (found) return found;
  const code = Object.keys(files).filter((file) => CODE_EXTENSIONS.includes(path.extname(file)));
  if (code.length === 1) return code[0]!;
  throw new UsageError(`${dir}: which file is the handler? none of ${ENTRY_CANDIDATES.join(', ')} is there: give --entrypoint`);
}

export function parseEnvAssignment(assignment: string): [string, string] {
  const at = assignment.indexOf('=');
  const name = at > 0 ? assignment.slice(0, at) : '';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--env takes NAME=VALUE, not "${assignment}"`);
  return [name, assignment.slice(at + 1)];
}
