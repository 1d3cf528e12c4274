// The frame of the base-image commands (push-base-image here, tools/images/runner-base-image.ts):
// the shared options, the push and the report. Kept apart from the commands themselves, whose
// `import.meta.main` blocks would run in any bundle that included them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { BaseImage } from './base-image.ts';
import { pushBaseImage } from './base-image.ts';
import type { PushedImage } from './push-image.ts';
import { RegistryClient } from './registry-client.ts';

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

type OptionValues = Record<string, string | boolean | undefined>;

/** A command that assembles a base image and pushes it; the options shared by all are added. */
export interface BaseImageCommand {
  /** Prefixes its error line. */
  name: string;
  usage: string;
  /** The command's own options, besides registry, user, password, repo, tag, insecure and help. */
  options: NonNullable<ParseArgsConfig['options']>;
  assemble(values: OptionValues, log: (text: string) => void): Promise<{ files: ReadonlyMap<string, unknown>; base: BaseImage }>;
  /** What goes to stdout once pushed. */
  describe(pushed: PushedImage, repo: string): unknown;
}

/** Parses the arguments, assembles, pushes, reports; returns the exit code (0 pushed, 1 failed, 2 usage). */
export async function runBaseImageCommand(argv: string[], io: Io, command: BaseImageCommand): Promise<number> {
  let values: OptionValues;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        registry: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        repo: { type: 'string' },
        tag: { type: 'string' },
        insecure: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...command.options,
      },
      strict: true,
    }));
  } catch (error) {
    io.stderr(`${(error as Error).message}\n${command.usage}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${command.usage}\n`);
    return 0;
  }
  const missing = (['registry', 'repo', 'tag'] as const).filter((name) => !values[name]);
  if (missing.length > 0) {
    io.stderr(`missing ${missing.map((name) => `--${name}`).join(', ')}\n${command.usage}\n`);
    return 2;
  }
  try {
    const url = new URL(String(values.registry));
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    const registry = new RegistryClient({
      url: url.origin,
      ...(values.user !== undefined ? { username: String(values.user), password: String(values.password ?? '') } : {}),
      insecure: values.insecure === true || (url.protocol === 'http:' && loopback),
    });
    const started = Date.now();
    const { files, base } = await command.assemble(values, io.stderr);
    io.stderr(`assembled ${files.size} files, layer ${base.layer.size} bytes compressed, in ${Date.now() - started} ms\n`);
    const repo = String(values.repo);
    const pushed = await pushBaseImage(registry, { repo, tag: String(values.tag) }, base);
    io.stderr(`pushed in ${Date.now() - started} ms\n`);
    io.stdout(`${JSON.stringify(command.describe(pushed, repo), null, 2)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`${command.name}: ${(error as Error).message}\n`);
    return 1;
  }
}
