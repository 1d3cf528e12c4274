#!/usr/bin/env node
// `npx kublambda` in the checkout: src/main.ts on the repository's pinned Node.js (26 runs
// TypeScript itself). Under an older node (the machine's), it starts the pinned one.
import { spawn } from 'node:child_process';
import path from 'node:path';

const main = path.join(import.meta.dirname, '../src/main.ts');
if (Number(process.versions.node.split('.')[0]) >= 26) {
  process.argv.splice(1, 1, main);
  await import(main);
} else {
  const node = path.join(import.meta.dirname, '../../../node_modules/.bin/node');
  const child = spawn(node, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    console.error(`kublambda: cannot start ${node} (run npm ci in the checkout): ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
}
