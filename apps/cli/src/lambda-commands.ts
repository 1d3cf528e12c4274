// deploy, get, describe and delete: what each does with the API server, without a process
// (the client and the terminal are handed in), returning the exit code.
import type { Lambda } from '@kublambda/crd-types';
import { EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT } from './exit-codes.ts';
import { CommandError } from './kube-errors.ts';
import type { LambdaClient } from './lambda-client.ts';
import { conditionSummary, deployState, formatDescribe, formatLambdas, formatLambdaTable, formatObjects, lambdaAddress, type OutputFormat } from './lambda-output.ts';

export interface Terminal {
  /** Results: stdout. */
  out(text: string): void;
  /** Diagnostics and progress: stderr. */
  err(text: string): void;
  /** stderr is a terminal: a spinner may redraw one line. */
  isTTY: boolean;
  now(): number;
  sleep(ms: number): Promise<void>;
}

const POLL_MS = 250;
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Shows how waiting goes: a redrawn spinner line on a terminal, else a line whenever it changes. */
function progress(terminal: Terminal) {
  let last = '';
  let frame = 0;
  let drawn = false;
  return {
    update(text: string) {
      if (terminal.isTTY) {
        terminal.err(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${text}`);
        drawn = true;
      } else if (text !== last) terminal.err(`${text}\n`);
      last = text;
    },
    done() {
      if (drawn) terminal.err('\r\x1b[2K');
      drawn = false;
    },
  };
}

export interface DeployRun {
  lambda: Lambda;
  waitSeconds: number;
  output?: OutputFormat;
}

export async function runDeploy(run: DeployRun, client: LambdaClient, terminal: Terminal): Promise<number> {
  const name = run.lambda.metadata.name!;
  const before = await client.get(name);
  const applied = await client.apply(run.lambda);
  const changed = !before ? 'created' : before.metadata.generation === applied.metadata.generation ? 'unchanged' : 'configured';
  terminal.err(`lambda ${client.namespace}/${name} ${changed}\n`);
  if (run.waitSeconds === 0) {
    if (run.output === 'json' || run.output === 'yaml') terminal.out(`${formatObjects(applied, run.output)}\n`);
    return EXIT_OK;
  }
  const deadline = terminal.now() + run.waitSeconds * 1_000;
  const shown = progress(terminal);
  let lambda: Lambda | undefined = applied;
  for (;;) {
    if (!lambda) {
      shown.done();
      throw new CommandError(`Lambda "${name}" was deleted in namespace "${client.namespace}" while deploy waited for it`);
    }
    const state = deployState(lambda);
    if (state.state === 'ready') {
      shown.done();
      terminal.err(`lambda ${client.namespace}/${name} is Ready\n`);
      terminal.out(run.output === 'json' || run.output === 'yaml' ? `${formatObjects(lambda, run.output)}\n` : `${lambdaAddress(lambda)}\n`);
      return EXIT_OK;
    }
    if (state.state === 'failed') {
      shown.done();
      terminal.err(`lambda ${client.namespace}/${name} failed to build (${state.reason}):\n${state.message}\n`);
      return EXIT_FAILED;
    }
    if (terminal.now() >= deadline) {
      shown.done();
      terminal.err(`lambda ${client.namespace}/${name} is not Ready after ${run.waitSeconds} s: ${state.summary}\n${lastConditions(lambda)}`);
      return EXIT_TIMEOUT;
    }
    shown.update(`${name}: ${state.summary}`);
    await terminal.sleep(POLL_MS);
    lambda = await client.get(name);
  }
}

function lastConditions(lambda: Lambda): string {
  return (lambda.status?.conditions ?? []).map((c) => `  ${c.type}=${c.status} ${c.reason ?? ''}${c.message ? `: ${c.message}` : ''}\n`).join('');
}

export interface GetRun {
  name?: string;
  allNamespaces: boolean;
  output: OutputFormat;
}

export async function runGet(run: GetRun, client: LambdaClient, terminal: Terminal): Promise<number> {
  let lambdas: Lambda[];
  if (run.name) {
    const lambda = await client.get(run.name);
    if (!lambda) throw new CommandError(`Lambda "${run.name}" not found in namespace "${client.namespace}"`);
    lambdas = [lambda];
  } else {
    lambdas = (await client.list(run.allNamespaces)).sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  }
  if (run.output !== 'table') {
    terminal.out(`${formatLambdas(lambdas, run.output, run.name !== undefined)}\n`);
  } else if (lambdas.length === 0) {
    terminal.err(run.allNamespaces ? 'No lambdas found.\n' : `No lambdas found in ${client.namespace} namespace.\n`);
  } else {
    terminal.out(`${formatLambdaTable(lambdas, terminal.now(), run.allNamespaces)}\n`);
  }
  return EXIT_OK;
}

export async function runDescribe(name: string, client: LambdaClient, terminal: Terminal): Promise<number> {
  const lambda = await client.get(name);
  if (!lambda) throw new CommandError(`Lambda "${name}" not found in namespace "${client.namespace}"`);
  const events = await client.events(lambda);
  terminal.out(`${formatDescribe(lambda, events, terminal.now())}\n`);
  return EXIT_OK;
}

export interface DeleteRun {
  name: string;
  wait: boolean;
  waitSeconds: number;
}

export async function runDelete(run: DeleteRun, client: LambdaClient, terminal: Terminal): Promise<number> {
  if (!(await client.delete(run.name))) throw new CommandError(`Lambda "${run.name}" not found in namespace "${client.namespace}"`);
  if (!run.wait) {
    terminal.out(`lambda ${client.namespace}/${run.name} deleted (not waiting for its cleanup)\n`);
    return EXIT_OK;
  }
  // The finalizer holds it until its route, builds and assets are gone.
  const deadline = terminal.now() + run.waitSeconds * 1_000;
  const shown = progress(terminal);
  for (;;) {
    const lambda = await client.get(run.name);
    if (!lambda) {
      shown.done();
      terminal.out(`lambda ${client.namespace}/${run.name} deleted\n`);
      return EXIT_OK;
    }
    if (terminal.now() >= deadline) {
      shown.done();
      terminal.err(`lambda ${client.namespace}/${run.name} is still there after ${run.waitSeconds} s (finalizers: ${(lambda.metadata.finalizers ?? []).join(', ') || 'none'}): ${conditionSummary(lambda)}\n`);
      return EXIT_TIMEOUT;
    }
    shown.update(`${run.name}: waiting for the platform's cleanup (finalizers: ${(lambda.metadata.finalizers ?? []).join(', ') || 'none'})`);
    await terminal.sleep(POLL_MS);
  }
}
