// Assembles the runner base image from this machine's Node (no Docker) and pushes it.
//
//   node libs/oci-image/src/push-base-image.ts --registry http://127.0.0.1:5000 --user U --password P \
//     --repo kublambda/runner-base --tag dev [--app-dir ./dist/app [--app-prefix /app]] [--insecure]
//
// Prints the pushed image as JSON on stdout; diagnostics on stderr.
// Exit codes: 0 pushed, 1 failed, 2 usage.
import { collectBaseImageFiles, createBaseImage } from './base-image.ts';
import { runBaseImageCommand, type Io } from './base-image-command.ts';

const USAGE = `usage: push-base-image --registry URL --user U --password P --repo REPO --tag TAG [--app-dir DIR] [--app-prefix /app] [--insecure]

  --insecure   allow a plain http registry (implied for http on loopback)

example:
  node libs/oci-image/src/push-base-image.ts --registry http://127.0.0.1:5000 --user kublambda --password secret \\
    --repo kublambda/runner-base --tag dev --app-dir ./build/app`;

/** The command without a process: returns the exit code. */
export function runPushBaseImage(argv: string[], io: Io): Promise<number> {
  return runBaseImageCommand(argv, io, {
    name: 'push-base-image',
    usage: USAGE,
    options: { 'app-dir': { type: 'string' }, 'app-prefix': { type: 'string' } },
    assemble: async (values) => {
      const files = await collectBaseImageFiles(values['app-dir'] !== undefined ? { appDir: String(values['app-dir']), appPrefix: String(values['app-prefix'] ?? '/app') } : {});
      return { files, base: createBaseImage(files) };
    },
    describe: (pushed) => pushed,
  });
}

if (import.meta.main) {
  process.exitCode = await runPushBaseImage(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
