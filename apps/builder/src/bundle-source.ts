import { build, type Message, type Plugin } from 'esbuild';
import { mkdir, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CompileError, fileDiagnostic, formatDiagnostic, type Diagnostic } from './compile-error.ts';
import { installDependencies } from './install-dependencies.ts';
import { checkTypes, lambdaApi } from './type-check.ts';

export interface SourceBundleRequest {
  /** Relative path -> content. A top-level package.json brings npm dependencies. */
  files: Record<string, string>;
  entrypoint: string;
  typeCheck: boolean;
}

export interface BundleOptions {
  /** A fresh private directory the caller removes. */
  workDir: string;
  npmCacheDir: string;
  npmRegistry?: string;
  signal?: AbortSignal;
}

export interface SourceBundle {
  /** One ES module, with every dependency, whose default export is the handler. */
  asset: Uint8Array;
  warnings: string[];
}

const assetName = 'lambda.mjs';

// Bundled CommonJS dependencies call require(); give the ES module one.
const requireBanner = "import { createRequire as __kublambdaCreateRequire } from 'node:module'; const require = __kublambdaCreateRequire(import.meta.url);";

/** Turns a lambda's source files into one executable asset; a CompileError when the source is at fault. */
export async function bundleSource(request: SourceBundleRequest, options: BundleOptions): Promise<SourceBundle> {
  requireEntrypointAmongFiles(request);
  const sourceRoot = await writeSourceFiles(options.workDir, request.files);
  if (Object.hasOwn(request.files, 'package.json')) await installDependencies(sourceRoot, options);
  options.signal?.throwIfAborted();
  // Bundling first: syntax and import errors read the same (esbuild's) whether or not typeCheck is on.
  const { asset, exports, warnings } = await bundle(sourceRoot, request.entrypoint);
  options.signal?.throwIfAborted();
  if (request.typeCheck) checkTypes(sourceRoot, request.entrypoint);
  requireDefaultExport(request.entrypoint, exports);
  return { asset, warnings: warnings.map(formatDiagnostic) };
}

function requireEntrypointAmongFiles({ files, entrypoint }: SourceBundleRequest): void {
  if (Object.hasOwn(files, entrypoint)) return;
  throw new CompileError('CompileFailed', [fileDiagnostic(entrypoint, `the entrypoint is not among the source files (${Object.keys(files).join(', ') || 'none'})`)]);
}

/** Writes the files under workDir/src and returns that directory's real path (what esbuild and tsc report paths against). */
async function writeSourceFiles(workDir: string, files: Record<string, string>): Promise<string> {
  const sourceRoot = path.join(await realpath(workDir), 'src');
  const escaping = Object.keys(files).filter((name) => path.isAbsolute(name) || !isInside(sourceRoot, path.resolve(sourceRoot, name)));
  if (escaping.length > 0) {
    throw new CompileError('CompileFailed', escaping.map((name) => fileDiagnostic(name, 'the path is not inside the source directory: use a relative path without ".."')));
  }
  for (const [name, content] of Object.entries(files)) {
    const target = path.join(sourceRoot, name);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  return sourceRoot;
}

function isInside(directory: string, target: string): boolean {
  return target.startsWith(directory + path.sep);
}

interface BundleResult {
  asset: Uint8Array;
  exports: string[];
  warnings: Diagnostic[];
}

async function bundle(sourceRoot: string, entrypoint: string): Promise<BundleResult> {
  try {
    const result = await build({
      absWorkingDir: sourceRoot,
      entryPoints: [entrypoint],
      outfile: assetName,
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node26',
      metafile: true,
      logLevel: 'silent',
      sourcemap: false,
      legalComments: 'none',
      banner: { js: requireBanner },
      plugins: [confineTo(sourceRoot)],
    });
    const [output] = result.outputFiles;
    const exports = result.metafile.outputs[assetName]?.exports;
    if (!output || !exports) throw new Error(`esbuild produced no ${assetName}`);
    return { asset: output.contents, exports, warnings: result.warnings.map((warning) => toDiagnostic(warning, entrypoint)) };
  } catch (error) {
    if (isBuildFailure(error)) throw new CompileError('CompileFailed', error.errors.map((message) => toDiagnostic(message, entrypoint)));
    throw new Error(`bundling ${entrypoint}`, { cause: error });
  }
}

// Marks the resolutions this plugin asks esbuild for, so that it does not intercept its own.
const resolvingForConfinement = Symbol('resolving for confinement');

/** Refuses imports that resolve outside the source root, so a lambda cannot bundle the builder's own files. */
function confineTo(sourceRoot: string): Plugin {
  return {
    name: 'confine-to-source-root',
    setup(build) {
      // The platform's own lambda API (readResourceEvent, StateError) is the one import from
      // outside the source: a file without imports of its own, bundled in like a dependency.
      build.onResolve({ filter: /^@kublambda\/lambda-api$/ }, () => ({ path: lambdaApi }));
      build.onResolve({ filter: /.*/ }, async ({ path: importPath, pluginData, ...args }) => {
        if (pluginData === resolvingForConfinement) return undefined;
        const resolved = await build.resolve(importPath, { ...args, pluginData: resolvingForConfinement });
        if (resolved.errors.length > 0 || resolved.external || isInside(sourceRoot, resolved.path)) return resolved;
        return { errors: [{ text: `"${importPath}" is outside the lambda's source: only its own files and its npm dependencies can be imported` }] };
      });
    },
  };
}

function isBuildFailure(error: unknown): error is Error & { errors: Message[] } {
  return error instanceof Error && Array.isArray((error as { errors?: unknown }).errors);
}

/** esbuild counts columns in UTF-8 bytes from 0; diagnostics count characters from 1. */
function toDiagnostic({ location, text }: Message, entrypoint: string): Diagnostic {
  if (!location) return fileDiagnostic(entrypoint, text);
  const column = Buffer.from(location.lineText).subarray(0, location.column).toString('utf8').length + 1;
  return { file: location.file, line: location.line, column, text };
}

function requireDefaultExport(entrypoint: string, exports: string[]): void {
  if (exports.includes('default')) return;
  throw new CompileError('NoDefaultExport', [
    fileDiagnostic(entrypoint, `${entrypoint} has no default export: export a handler, e.g. export default async (request) => new Response("hi")`),
  ]);
}
