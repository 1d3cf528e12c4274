// Bundles an app's src/main.ts, with every dependency, into dist/<app root>/main.mjs: one file
// that a container image (or `node`) runs with no node_modules beside it.
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
  // Bundled CommonJS dependencies call require(); give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
console.log(`bundled ${projectRoot} -> ${path.relative(workspaceRoot, outfile)}`);
