// `kublambda events <name>`: the events a lambda's watch triggers gave up on (dead letters,
// newest first), and sending them again: one by id, or all.
import { EXIT_FAILED, EXIT_OK } from './exit-codes.ts';
import type { ControllerAdmin } from './controller-admin.ts';
import { CommandError } from './kube-errors.ts';
import type { LambdaClient } from './lambda-client.ts';
import type { Terminal } from './lambda-commands.ts';
import { formatTable } from './lambda-output.ts';
import type { DeadLetter } from '@kublambda/watch-triggers';

export interface EventsRun {
  name: string;
  /** Ids to send again; with `all`, every dead letter. */
  retry: string[];
  all: boolean;
  output: 'table' | 'json';
}

export interface EventsDeps {
  client: LambdaClient;
  admin: ControllerAdmin;
}

const short = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`);

export function formatDeadLetters(letters: DeadLetter[]): string {
  if (letters.length === 0) return 'no dead letters: every event its watch triggers matched was delivered\n';
  const rows = letters.map((letter) => [letter.deadAt, letter.type.split('.').at(-1) ?? letter.type, letter.subject, String(letter.triggerIndex), String(letter.attempts), letter.id, short(letter.lastError.replace(/\s+/g, ' '), 80)]);
  return `${formatTable(['DEAD AT', 'TYPE', 'SUBJECT', 'TRIGGER', 'ATTEMPTS', 'ID', 'LAST ERROR'], rows)}\nretry one: kublambda events <lambda> --retry <ID>; all: --retry-all\n`;
}

export async function runEvents(run: EventsRun, deps: EventsDeps, terminal: Terminal): Promise<number> {
  const lambda = await deps.client.get(run.name);
  if (!lambda) throw new CommandError(`Lambda "${run.name}" not found in namespace "${deps.client.namespace}"`);
  const ref = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  if (run.retry.length === 0 && !run.all) {
    const letters = await deps.admin.deadLetters(ref);
    terminal.out(run.output === 'json' ? `${JSON.stringify({ deadLetters: letters }, null, 2)}\n` : formatDeadLetters(letters));
    return EXIT_OK;
  }
  const ids = run.all ? [...new Set((await deps.admin.deadLetters(ref)).map((letter) => letter.id))] : run.retry;
  if (ids.length === 0) terminal.err('no dead letters to retry\n');
  let failed = 0;
  for (const id of ids) {
    try {
      const { status } = await deps.admin.retryDeadLetter(ref, id);
      terminal.out(`${id}: delivered (HTTP ${status}), removed from the dead letters\n`);
    } catch (error) {
      failed++;
      terminal.err(`${id}: ${(error as Error).message}\n`);
    }
  }
  return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
