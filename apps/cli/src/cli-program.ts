// The `kublambda` command line on commander: every command, its options and --help, and the
// mapping of what happens to exit codes. main.ts hands in the real terminal and clients;
// tests hand in fakes and run it without a process.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from '@kublambda/reconcile-runtime';
import { BUILDS_USAGE } from './builds-command.ts';
import { UsageError } from './command-line.ts';
import { EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.ts';
import { INIT_TEMPLATES, runInit, type InitTemplate } from './init-command.ts';
import { CommandError } from './kube-errors.ts';
import type { KubeConfigOptions, LambdaClient } from './lambda-client.ts';
import { runDelete, runDeploy, runDescribe, runGet, type Terminal } from './lambda-commands.ts';
import { lambdaForDeploy, readDeploySource } from './deploy-source.ts';
import type { ControllerAdmin } from './controller-admin.ts';
import { runEvents } from './events-command.ts';
import { runInvoke, type InvokeDeps, type InvokeOptions } from './invoke-command.ts';
import { parseSince, runLogs, type LogsDeps } from './logs-command.ts';
import { OUTPUT_FORMATS, type OutputFormat } from './lambda-output.ts';
import { STATE_USAGE } from './state-command.ts';

export interface KubeOptions extends KubeConfigOptions {
  namespace?: string;
}

/** The runner pods, reached through the API server in the platform's namespace. */
export type RunnerAccess = Omit<InvokeDeps, 'client' | 'readData'> & Omit<LogsDeps, 'client'>;

export interface CliDeps {
  terminal: Terminal;
  /** Where init makes its directory. */
  cwd: string;
  /** The API client of the lambda commands, for -n or the context's namespace. */
  lambdaClient(options: KubeOptions): LambdaClient;
  /** `kublambda state` and `kublambda builds` with their own argument parsing. */
  state(argv: string[], kube: KubeConfigOptions): Promise<number>;
  builds(argv: string[], kube: KubeConfigOptions): Promise<number>;
  runners(kube: KubeConfigOptions, platformNamespace: string): RunnerAccess;
  /** api-controller's admin API: dead letters, state tables. */
  controllerAdmin(kube: KubeConfigOptions, platformNamespace: string): ControllerAdmin;
  /** Runs the local platform's up or down (tools/local) with these arguments; the exit code. */
  local(command: 'up' | 'down', argv: string[]): Promise<number>;
  /** KUBLAMBDA_PLATFORM_NAMESPACE, else kublambda-system. */
  defaultPlatformNamespace: string;
}

const LOCAL_USAGE = {
  up: `usage: kublambda up [--dir <state dir>] [--reset] [--s3] [--npm-registry <url>]

Starts the whole platform on this machine (npm run up): a Kubernetes control plane with a kwok
node, Redis, the artifact store (a directory in --dir; --s3 runs an S3 server instead), an OCI
registry, api-controller, builder, the runner pool with the autoscaler, and the examples. It
writes a kubeconfig and prints every URL; Ctrl-C (or kublambda down) stops everything. The state
stays in --dir (default ~/.cache/kublambda/local) for the next start; --reset starts afresh
(and is needed to switch the artifact store). --npm-registry sets where lambdas' npm
dependencies come from. Runs from a checkout of the repository.`,
  down: `usage: kublambda down [--dir <state dir>]

Stops the local platform that kublambda up (or npm run up) started with the same --dir.`,
};

const KUBE_HELP = `It talks only to the Kubernetes API server, with the kubeconfig (--kubeconfig, else
KUBECONFIG, else ~/.kube/config) and its current context (or --context), as kubectl does.`;

const DEPLOY_HELP = `
<path> is one of:
  a .ts .mts .tsx .js .mjs .jsx file   spec.source.inline, saved under its own name (the entrypoint)
  a Lambda manifest (.yaml)            applied as it is, the options above on top
  a directory                          its code and .json files (package.json: npm dependencies)
                                       become spec.source.files; a lambda.yaml in it gives the rest
                                       of the spec (one with its own spec.source is applied as it is)
A file or a directory without lambda.yaml gets an HTTP trigger at /<namespace>/<name>.

It prints the URL: status.url, or the path the runner serves the lambda at when it has none.
A build failure (Built=False) prints the compiler's messages (file:line:col) and exits 1;
not Ready within --wait-seconds prints the last conditions and exits 3.`;

function positiveInteger(label: string) {
  return (value: string) => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number <= 0) throw new InvalidArgumentError(`${label} must be a whole number above 0, not "${value}"`);
    return number;
  };
}

function waitSeconds(value: string) {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) throw new InvalidArgumentError(`must be a whole number of seconds (0: do not wait), not "${value}"`);
  return number;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function outputOption() {
  return new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table');
}

/** -n, --kubeconfig and --context, on the program (before the command) and on each command (after it). */
function withKubeOptions(command: Command): Command {
  return command
    .option('-n, --namespace <namespace>', "the namespace (default: the kubeconfig context's, else \"default\")")
    .option('--kubeconfig <file>', 'the kubeconfig file (default: KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context (default: its current-context)');
}

function kubeOptionsOf(command: Command): KubeOptions {
  const options = command.optsWithGlobals() as KubeOptions;
  return { namespace: options.namespace, kubeconfig: options.kubeconfig, context: options.context };
}

function platformNamespaceOption(deps: CliDeps) {
  return new Option('--platform-namespace <namespace>', "where the platform's pods run (default: $KUBLAMBDA_PLATFORM_NAMESPACE, else kublambda-system)").default(deps.defaultPlatformNamespace);
}

function sinceOption() {
  return new Option('--since <duration>', 'only lines newer than this: 30s, 5m, 2h, 1d').argParser((value: string) => {
    try {
      return parseSince(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message.replace(/^--since /, ''));
    }
  });
}

function examples(...lines: string[]): string {
  return `\nexamples:\n${lines.map((line) => `  ${line}`).join('\n')}\n\n${EXIT_CODES_HELP}`;
}

/** Runs one command line (the words after `kublambda`) and returns the exit code. */
export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  const { terminal } = deps;
  let exitCode = EXIT_OK;
  let current = 'kublambda';

  const program = new Command('kublambda')
    .usage('<command> [options]')
    .description('Lambdas on Kubernetes: deploy, list, describe and delete Lambda resources, read their builds and state tables.')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(kublambda <command> --help shows how to use it)')
    .configureOutput({ writeOut: (text) => terminal.out(text), writeErr: (text) => terminal.err(text) })
    .configureHelp({ styleTitle: (title) => title.toLowerCase(), sortSubcommands: false });
  withKubeOptions(program);
  program.addHelpText('after', `\n${KUBE_HELP}\n\n${EXIT_CODES_HELP}`);

  /** An action's outcome as an exit code; its failures as messages naming the command. */
  const action =
    (name: string, body: (...args: never[]) => Promise<number>) =>
    async (...args: unknown[]) => {
      current = `kublambda ${name}`;
      exitCode = await (body as (...a: unknown[]) => Promise<number>)(...args);
    };

  withKubeOptions(program
    .command('deploy'))
    .summary('create or update a Lambda from a file or directory, wait until it is Ready')
    .description('Creates or updates a Lambda (server-side apply, field manager kublambda-cli), waits until it is Ready and prints its URL.')
    .argument('<path>', 'file or directory')
    .option('--name <name>', "the Lambda's name (default: the manifest's, else the file or directory name)")
    .option('--path <path>', 'HTTP path prefix (spec.triggers.http.path; default /<namespace>/<name>)')
    .option('--host <host>', 'HTTP host (spec.triggers.http.host)')
    .option('--memory <MiB>', 'memory limit (spec.memoryMiB)', positiveInteger('--memory'))
    .option('--timeout <seconds>', 'longest invocation (spec.timeoutSeconds)', positiveInteger('--timeout'))
    .addOption(new Option('--env <NAME=VALUE>', 'an environment variable (spec.env); repeat for more').argParser(collect).default([], 'none'))
    .option('--entrypoint <file>', 'the handler file in a directory (default: index.ts, handler.ts, ... or the only code file)')
    .option('--type-check', 'TypeScript type errors fail the build (spec.build.typeCheck)')
    .option('--wait-seconds <n>', 'how long to wait for Ready; 0: do not wait', waitSeconds, 120)
    .addOption(new Option('-o, --output <format>', 'url: the URL only; json or yaml: the Lambda once Ready').choices(['url', 'json', 'yaml']).default('url'))
    .addHelpText('after', DEPLOY_HELP)
    .addHelpText('after', examples('kublambda deploy hello.ts', 'kublambda deploy ./orders --env LOG_LEVEL=debug --memory 256', 'kublambda deploy lambda.yaml -n shop --wait-seconds 300'))
    .action(
      action('deploy', async (target: string, options: { name?: string; path?: string; host?: string; memory?: number; timeout?: number; env: string[]; entrypoint?: string; typeCheck?: boolean; waitSeconds: number; output: string }, command: Command) => {
        const lambda = lambdaForDeploy(await readDeploySource(target), options);
        const client = deps.lambdaClient(kubeOptionsOf(command));
        return runDeploy({ lambda, waitSeconds: options.waitSeconds, output: options.output === 'url' ? undefined : (options.output as OutputFormat) }, client, terminal);
      }),
    );

  withKubeOptions(program.command('get'))
    .summary('list lambdas, or show one, with their status')
    .description('Lists lambdas as kubectl get lam does (NAME, READY, URL, IMAGE, AGE), or prints them as JSON or YAML.')
    .argument('[name]', 'one lambda')
    .option('-A, --all-namespaces', 'lambdas of every namespace')
    .addOption(outputOption())
    .addHelpText('after', examples('kublambda get', 'kublambda get hello -o yaml', 'kublambda get -A'))
    .action(
      action('get', async (name: string | undefined, options: { allNamespaces?: boolean; output: OutputFormat }, command: Command) => {
        const kube = kubeOptionsOf(command);
        if (options.allNamespaces && (name !== undefined || kube.namespace !== undefined)) throw new UsageError('-A lists every namespace: give it without a name or -n');
        return runGet({ name, allNamespaces: Boolean(options.allNamespaces), output: options.output }, deps.lambdaClient(kube), terminal);
      }),
    );

  withKubeOptions(program.command('describe'))
    .summary("a lambda's spec, status, conditions, failures and events")
    .argument('<name>', 'the lambda')
    .addHelpText('after', examples('kublambda describe hello -n shop'))
    .action(action('describe', async (name: string, _options: unknown, command: Command) => runDescribe(name, deps.lambdaClient(kubeOptionsOf(command)), terminal)));

  withKubeOptions(program.command('delete'))
    .summary('delete a lambda and wait until the platform has cleaned up after it')
    .argument('<name>', 'the lambda')
    .option('--no-wait', 'return once the API server has accepted the delete')
    .option('--wait-seconds <n>', 'how long to wait for it to be gone', positiveInteger('--wait-seconds'), 60)
    .addHelpText('after', examples('kublambda delete hello', 'kublambda delete hello --no-wait'))
    .action(
      action('delete', async (name: string, options: { wait: boolean; waitSeconds: number }, command: Command) =>
        runDelete({ name, wait: options.wait, waitSeconds: options.waitSeconds }, deps.lambdaClient(kubeOptionsOf(command)), terminal),
      ),
    );

  withKubeOptions(program.command('invoke'))
    .summary('call a lambda over HTTP, as its trigger routes it, and print the answer')
    .description(
      "Sends one request to the lambda's HTTP trigger (its path and host) on a runner pod, through the API server's port-forward (pods/portforward in the platform namespace), and prints the body. An answer of 400 or more exits 1.",
    )
    .argument('<name>', 'the lambda')
    .option('-d, --data <body>', 'the request body (POST unless --method); @file reads a file, @- standard input')
    .option('-X, --method <method>', 'the HTTP method (default: GET, or POST with --data)')
    .addOption(new Option('-H, --header <Name: value>', 'a request header; repeat for more').argParser(collect).default([], 'none'))
    .option('--path <path>', "below the trigger's path: /items?id=1")
    .option('-i, --include', 'print the status line and headers before the body')
    .option('--timeout <seconds>', 'how long to wait for the answer', positiveInteger('--timeout'), 60)
    .addOption(platformNamespaceOption(deps))
    .addHelpText('after', examples('kublambda invoke hello', "kublambda invoke hello --path '?name=you'", 'kublambda invoke orders -d \'{"id":1}\' -H "Content-Type: application/json"'))
    .action(
      action('invoke', async (name: string, options: InvokeOptions & { timeout: number; platformNamespace: string }, command: Command) => {
        const kube = kubeOptionsOf(command);
        return runInvoke(name, { ...options, timeoutSeconds: options.timeout }, { client: deps.lambdaClient(kube), ...deps.runners(kube, options.platformNamespace) }, terminal);
      }),
    );

  withKubeOptions(program.command('logs'))
    .summary("a lambda's console output and failures, from every runner replica")
    .description(
      "Reads the runner pods' logs through the API server (pods/log in the platform namespace) and prints the lines about this lambda: its console output with each request's id, and the runner's lines about its failures (crashes, timeouts, refused requests).",
    )
    .argument('<name>', 'the lambda')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .addOption(sinceOption())
    .addOption(new Option('-o, --output <format>', 'text, or json: the JSON lines as the runner wrote them, with the pod').choices(['text', 'json']).default('text'))
    .addOption(platformNamespaceOption(deps))
    .addHelpText('after', examples('kublambda logs hello', 'kublambda logs hello -f --since 5m', 'kublambda logs hello -o json | jq .requestId'))
    .action(
      action('logs', async (name: string, options: { follow?: boolean; since?: number; output: 'text' | 'json'; platformNamespace: string }, command: Command) => {
        const kube = kubeOptionsOf(command);
        const run = { name, follow: Boolean(options.follow), sinceSeconds: options.since, output: options.output };
        return runLogs(run, { client: deps.lambdaClient(kube), ...deps.runners(kube, options.platformNamespace) }, terminal);
      }),
    );

  withKubeOptions(program.command('events'))
    .summary('the events its watch triggers gave up on (dead letters), and sending them again')
    .description(
      "Lists the lambda's dead letters, newest first: events its watch triggers matched but could not deliver within the retry budget. --retry sends one again (it leaves the list once the lambda takes it). Read through the API server: a port-forward to api-controller's admin API (pods/portforward in the platform namespace).",
    )
    .argument('<name>', 'the lambda')
    .addOption(new Option('--retry <id>', 'send this dead letter again; repeat for more').argParser(collect).default([], 'none'))
    .option('--retry-all', 'send every dead letter again')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .addOption(platformNamespaceOption(deps))
    .addHelpText('after', examples('kublambda events on-config', "kublambda events on-config --retry '3f1c.../12345'", 'kublambda events on-config --retry-all'))
    .action(
      action('events', async (name: string, options: { retry: string[]; retryAll?: boolean; output: 'table' | 'json'; platformNamespace: string }, command: Command) => {
        if (options.retryAll && options.retry.length > 0) throw new UsageError('give --retry <id> or --retry-all, not both');
        const kube = kubeOptionsOf(command);
        return runEvents({ name, retry: options.retry, all: Boolean(options.retryAll), output: options.output }, { client: deps.lambdaClient(kube), admin: deps.controllerAdmin(kube, options.platformNamespace) }, terminal);
      }),
    );

  program
    .command('init')
    .summary('make a directory with a new lambda: handler.ts, lambda.yaml and a README')
    .argument('<name>', "the lambda's name, also the directory's")
    .addOption(new Option('--template <template>', 'what calls it').choices(INIT_TEMPLATES).default('http'))
    .addHelpText('after', examples('kublambda init hello && kublambda deploy hello', 'kublambda init on-config --template watch'))
    .action(
      action('init', async (name: string, options: { template: InitTemplate }) => {
        const dir = await runInit(name, options.template, deps.cwd);
        terminal.out(`created ${dir}: handler.ts, lambda.yaml, README.md\ndeploy it with: kublambda deploy ${name}\n`);
        return EXIT_OK;
      }),
    );

  // Their own parsers and usage texts: every word after the command is theirs (state and builds
  // print their usage for --help themselves).
  const local = (name: 'up' | 'down') => async (args: string[]) => {
    if (args.includes('--help') || args.includes('-h')) {
      terminal.out(`${LOCAL_USAGE[name]}\n`);
      return EXIT_OK;
    }
    return deps.local(name, args);
  };
  for (const [name, usage, summary, run] of [
    ['state', STATE_USAGE, "list a lambda's state table", deps.state],
    ['builds', BUILDS_USAGE, 'show the build queue, retry a failed build', deps.builds],
    ['up', LOCAL_USAGE.up, 'start the whole platform on this machine (npm run up)', local('up')],
    ['down', LOCAL_USAGE.down, 'stop the local platform (npm run down)', local('down')],
  ] as const) {
    program
      .command(name)
      .summary(summary)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .passThroughOptions()
      .argument('[arguments...]')
      .configureHelp({ formatHelp: () => `${usage}\n` })
      .action(action(name, async (args: string[], _options: unknown, command: Command) => run(args, kubeOptionsOf(command))));
  }

  if (argv.length === 0) {
    program.outputHelp();
    return EXIT_OK;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    if (error instanceof UsageError) {
      terminal.err(`${current}: ${error.message}\n(${current} --help shows how to use it)\n`);
      return EXIT_USAGE;
    }
    terminal.err(`${current}: ${error instanceof CommandError ? error.message : describeError(error)}\n`);
    return EXIT_FAILED;
  }
}
