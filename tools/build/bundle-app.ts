// Bundles an app's src/main.ts, with its dependencies, into dist/<app root>/main.mjs: one file
// that a container image (or `node`) runs; only esbuild and typescript stay in node_modules.
// Scripts the app runs as processes of their own are bundled beside it, one file each.
import { build, type BuildOptions, type Metafile, type OutputFile } from 'esbuild';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';

/**
 * By app: scripts it starts as processes of their own, each bundled into <name>.mjs beside
 * main.mjs. They must import nothing but node built-ins once bundled.
 */
const processScripts: Record<string, string[]> = {
  // The runner's workers run it under Node's permission model, allowed to read only that file.
  'apps/runner': ['src/worker/worker-host.ts'],
  // The builder prepares Kaniko build contexts with it (IMAGE_BACKEND=kaniko).
  'apps/builder': ['src/kaniko-context-script.ts'],
};

const workspaceRoot = path.resolve(import.meta.dirname, '../..');
const projectRoot = path.relative(workspaceRoot, process.cwd());
const outdir = path.join(workspaceRoot, 'dist', projectRoot);

const common = {
  bundle: true,
  platform: 'node',
  target: 'node26',
  format: 'esm',
  sourcemap: 'linked',
  logLevel: 'warning',
  write: false,
  metafile: true,
} satisfies BuildOptions;

/** Bundles entry (relative to the app) into outdir as <entry name>.mjs; returns the output's path. */
async function bundle(entry: string, options: Pick<BuildOptions, 'external' | 'banner'>, check?: (metafile: Metafile) => void): Promise<string> {
  const outfile = path.join(outdir, `${path.basename(entry, path.extname(entry))}.mjs`);
  const result = await build({ ...common, ...options, entryPoints: [path.join(process.cwd(), entry)], outfile });
  check?.(result.metafile);
  await replaceWhole(result.outputFiles);
  return outfile;
}

/**
 * Writes each file beside its target and renames it over: a process starting meanwhile (another
 * test bundling the same app, say) reads the old bundle or the new one, never half of one.
 */
async function replaceWhole(files: OutputFile[]) {
  await mkdir(outdir, { recursive: true });
  await Promise.all(
    files.map(async (file) => {
      const partial = `${file.path}.${process.pid}.partial`;
      await writeFile(partial, file.contents);
      await rename(partial, file.path);
    }),
  );
}

/**
 * A process script gets no require() (main.mjs gets one from its banner): a require call left in
 * it would throw only when run, so it fails the build instead.
 */
function checkOnlyBuiltinImports(script: string) {
  return (metafile: Metafile) => {
    const imports = Object.values(metafile.outputs).flatMap((output) => output.imports);
    const refused = imports.filter((imported) => imported.kind === 'require-call' || !isBuiltin(imported.path));
    if (refused.length > 0) {
      throw new Error(`${projectRoot}/${script} must import nothing but node built-ins once bundled; it has ${refused.map((imported) => `${imported.kind} ${imported.path}`).join(', ')}`);
    }
  };
}

const outfiles = await Promise.all([
  bundle('src/main.ts', {
    // The builder runs these two from node_modules: esbuild needs its native binary and the
    // TypeScript compiler its lib files, neither of which survives bundling.
    external: ['esbuild', 'typescript'],
    // Bundled CommonJS dependencies call require(); give the ES module one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  }),
  ...(processScripts[projectRoot] ?? []).map((script) => bundle(script, {}, checkOnlyBuiltinImports(script))),
]);
console.log(`bundled ${projectRoot} -> ${outfiles.map((outfile) => path.relative(workspaceRoot, outfile)).join(', ')}`);
