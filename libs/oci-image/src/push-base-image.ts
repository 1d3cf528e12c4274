// Assembles the runner base image from this machine's Node (no Docker) and pushes it.
//
//   node libs/oci-image/src/push-base-image.ts --registry http://127.0.0.1:5000 --user U --password P \
//     --repo kublambda/runner-base --tag dev [--app-dir ./dist/app [--app-prefix /app]] [--insecure]
//
// Prints the pushed image as JSON on stdout; diagnostics on stderr.
// Exit codes: 0 pushed, 1 failed, 2 usage.
import { parseArgs } from 'node:util';
import { collectBaseImageFiles, createBaseImage, pushBaseImage } from './base-image.ts';
import { RegistryClient } from './registry-client.ts';

const USAGE = `usage: push-base-image --registry URL --user U --password P --repo REPO --tag TAG [--app-dir DIR] [--app-prefix /app] [--insecure]

  --insecure   allow a plain http registry (implied for http on loopback)

example:
  node libs/oci-image/src/push-base-image.ts --registry http://127.0.0.1:5000 --user kublambda --password secret \\
    --repo kublambda/runner-base --tag dev --app-dir ./build/app`;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The command without a process: returns the exit code. */
export async function runPushBaseImage(argv: string[], io: Io): Promise<number> {
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
        'app-dir': { type: 'string' },
        'app-prefix': { type: 'string' },
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
    const files = await collectBaseImageFiles(values['app-dir'] !== undefined ? { appDir: values['app-dir'], appPrefix: values['app-prefix'] ?? '/app' } : {});
    const base = createBaseImage(files);
    io.stderr(`assembled ${files.size} files, layer ${base.layer.size} bytes compressed, in ${Date.now() - started} ms\n`);
    const pushed = await pushBaseImage(registry, { repo: values.repo!, tag: values.tag! }, base);
    io.stderr(`pushed in ${Date.now() - started} ms\n`);
    io.stdout(`${JSON.stringify(pushed, null, 2)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`push-base-image: ${(error as Error).message}\n`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await runPushBaseImage(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
