// The Kaniko wrapper script: prepares a build context as a process of its own, so the builder's
// event loop never stalls on archiving a large asset. The builder runs it through execa
// (kaniko-backend.ts); bundled, it is kaniko-context-script.mjs beside the builder's main.mjs.
//
//   node kaniko-context-script.ts --base <image> --out <file.tar.gz> </image/path>=<local file>...
//
// Prints {"digest":"sha256:...","size":N} of the archive on stdout; exit code 2 on bad usage.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createKanikoContext } from './kaniko-context.ts';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ options: { base: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`kaniko-context: ${(error as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const files = positionals.map((argument) => argument.split(/=(.*)/s, 2) as [string, string | undefined]);
  if (!values.base || !values.out || files.length === 0 || files.some(([imagePath, local]) => !imagePath || !local)) {
    process.stderr.write('usage: kaniko-context --base <image> --out <file.tar.gz> </image/path>=<local file>...\n');
    return 2;
  }
  const contents = Object.fromEntries(await Promise.all(files.map(async ([imagePath, local]) => [imagePath, { bytes: await readFile(local!), mode: 0o644 }] as const)));
  const context = createKanikoContext(values.base, contents);
  const partial = `${values.out}.partial`;
  await writeFile(partial, context.archive);
  await rename(partial, values.out);
  process.stdout.write(`${JSON.stringify({ digest: context.digest, size: context.archive.length })}\n`);
  return 0;
}

process.exitCode = await main().catch((error: unknown) => {
  process.stderr.write(`kaniko-context: ${(error as Error).message}\n`);
  return 1;
});
