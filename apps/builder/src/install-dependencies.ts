import { ExecaError, execa } from 'execa';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CompileError, type Diagnostic } from './compile-error.ts';
import { networkEnv } from '@kublambda/config';

export interface InstallOptions {
  npmCacheDir: string;
  /** The npm registry to install from (NPM_REGISTRY: a mirror or a private one); npm's default when unset. */
  npmRegistry?: string;
  signal?: AbortSignal;
}

// npm error codes that mean the package.json asks for something that cannot be installed as
// written, so a retry cannot help. Anything else (network, registry outage, full disk) may pass later.
const dependencyErrorCodes = new Set([
  'E404',
  'ETARGET',
  'ENOVERSIONS',
  'EINVALIDTAGNAME',
  'EINVALIDPACKAGENAME',
  'EUNSUPPORTEDPROTOCOL',
  'EJSONPARSE',
  'ERESOLVE',
  'EBADPLATFORM',
]);

/** Installs the production dependencies of `sourceRoot/package.json` into `sourceRoot/node_modules`. */
export async function installDependencies(sourceRoot: string, { npmCacheDir, npmRegistry, signal }: InstallOptions): Promise<void> {
  const args = ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--cache', npmCacheDir];
  try {
    await execa('npm', args, { cwd: sourceRoot, env: npmEnvironment(npmCacheDir, npmRegistry), extendEnv: false, ...(signal ? { cancelSignal: signal } : {}) });
  } catch (error) {
    signal?.throwIfAborted();
    throw await installFailure(sourceRoot, error);
  }
}

/** A CompileError when the package.json itself is at fault, otherwise an Error worth retrying. */
async function installFailure(sourceRoot: string, error: unknown): Promise<Error> {
  const errorLines = error instanceof ExecaError ? npmErrorLines(String(error.stderr)) : '';
  const code = /^npm error code (\S+)/m.exec(errorLines)?.[1];
  if (code && dependencyErrorCodes.has(code)) return new CompileError('DependencyInstallFailed', [await dependencyDiagnostic(sourceRoot, errorLines)]);
  return new Error(`npm install failed${code ? ` (${code})` : ''}${errorLines ? `:\n${errorLines}` : ''}`, { cause: error });
}

/** npm gets what it needs to reach the registry; our credentials (cluster, store) stay out of its reach and of what it downloads. */
function npmEnvironment(npmCacheDir: string, npmRegistry: string | undefined): Record<string, string> {
  return { ...networkEnv(process.env), npm_config_cache: npmCacheDir, npm_config_update_notifier: 'false', ...(npmRegistry ? { npm_config_registry: npmRegistry } : {}) };
}

/** npm's own error lines, without the pointer to its debug log: a path on the builder, meaningless to the user. */
function npmErrorLines(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('npm error') && !line.includes('A complete log of this run'))
    .join('\n');
}

async function dependencyDiagnostic(sourceRoot: string, errorLines: string): Promise<Diagnostic> {
  const packageJson = await readFile(path.join(sourceRoot, 'package.json'), 'utf8');
  return { file: 'package.json', ...locateNamedDependency(packageJson, errorLines), text: errorLines };
}

/** Where package.json declares the dependency npm's error names ("name@version"), else its start. */
function locateNamedDependency(packageJson: string, errorLines: string): { line: number; column: number } {
  const named = declaredDependencies(packageJson).find((name) => new RegExp(`(^|[\\s'"/])${escapeRegExp(name)}@`, 'm').test(errorLines));
  const index = named === undefined ? -1 : packageJson.search(new RegExp(`"${escapeRegExp(named)}"\\s*:`));
  if (index < 0) return { line: 1, column: 1 };
  const before = packageJson.slice(0, index).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

function declaredDependencies(packageJson: string): string[] {
  try {
    const manifest = JSON.parse(packageJson) as { dependencies?: object; optionalDependencies?: object; peerDependencies?: object };
    return [manifest.dependencies, manifest.optionalDependencies, manifest.peerDependencies].flatMap((deps) => Object.keys(deps ?? {}));
  } catch {
    return []; // npm reports the broken JSON itself
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
