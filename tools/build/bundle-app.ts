// Bundles an app's src/main.ts, with its dependencies, into dist/<app root>/main.mjs: one file
// that a container image (or `node`) runs; only esbuild and typescript stay in node_modules.
import { build } from 'esbuild';
import path from 'node:path';

const workspaceRoot = path.resolve(import.meta.dirname, '../..');
const projectRoot = path.relative(workspaceRoot, process.cwd());
const outfile = path.join(workspaceRoot, 'dist', projectRoot, 'main.mjs');

await build({
  entryPoints: [path.join(process.cwd(), 'src/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  sourcemap: 'linked',
  logLevel: 'warning',
  // The builder runs these two from node_modules: esbuild needs its native binary and the
  // TypeScript compiler its lib files, neither of which survives bundling.
  external: ['esbuild', 'typescript'],
  // Bundled CommonJS dependencies call require(); give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
console.log(`bundled ${projectRoot} -> ${path.relative(workspaceRoot, outfile)}`);
