import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** Thrown for a command line that cannot be run; main prints it with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** node:util parseArgs with positionals allowed, its complaints as UsageErrors. */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A word as a shell would take it back: quoted unless plainly safe. */
export function shellWord(word: string): string {
  return /^[\w./:=@-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
