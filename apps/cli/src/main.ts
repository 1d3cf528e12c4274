// The `kublambda` command. Unfinished: `state` and `builds` work; the other commands say they are not implemented yet.
import * as k8s from '@kubernetes/client-node';
import { describeError } from '@kublambda/reconcile-runtime';
import { connectStateRedis, createReadOnlyStateStore } from '@kublambda/state-tables';
import { builderAdmin } from './builder-admin.ts';
import { BUILDS_USAGE, parseBuildsArgs, platformNamespaceOf, runBuildsCommand, type BuildsArgs } from './builds-command.ts';
import { contextNamespace, kubeDeclaredTables } from './kube-lambdas.ts';
import { UsageError } from './command-line.ts';
import { STATE_USAGE, parseStateArgs, runStateCommand, stateCommandConfig, type StateArgs, type StateCommandConfig } from './state-command.ts';

const commands: Record<string, string> = {
  up: 'start the local all-in-one platform',
  deploy: 'create or update a Lambda from a source file',
  invoke: 'call a lambda over HTTP',
  get: 'list lambdas with their status',
  logs: "show a lambda's logs",
  builds: 'show the build queue',
  state: "list a lambda's state table",
  delete: 'delete a lambda',
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: kublambda <command> [arguments]', '', 'commands:', ...Object.entries(commands).map(([c, what]) => `  ${c.padEnd(width)}  ${what}`)].join('\n');
}

async function state(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STATE_USAGE);
    return 0;
  }
  let args: StateArgs;
  let config: StateCommandConfig;
  try {
    args = parseStateArgs(argv);
    config = stateCommandConfig(process.env);
  } catch (error) {
    // A configuration error already names the command and lists every problem.
    console.error(error instanceof UsageError ? `kublambda state: ${error.message}\n\n${STATE_USAGE}` : (error as Error).message);
    return 1;
  }
  try {
    const kubeConfig = loadKubeConfig();
    const output = await runStateCommand(
      { ...args, namespace: args.namespace ?? contextNamespace(kubeConfig) },
      {
        declaredTables: kubeDeclaredTables(kubeConfig),
        list: async (namespace, table, options) => {
          // Read-only: REDIS_URL carries the Redis user "cli", which may read state tables only.
          const redis = await connectStateRedis(config.redisUrl, () => {});
          try {
            return await createReadOnlyStateStore(redis).table(namespace, table).list(options);
          } finally {
            redis.disconnect();
          }
        },
      },
    );
    console.log(output);
    return 0;
  } catch (error) {
    console.error(`kublambda state: ${describeError(error)}`);
    return 1;
  }
}

function loadKubeConfig(): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    throw new Error('loading the kubeconfig', { cause: error });
  }
  return kubeConfig;
}

async function builds(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(BUILDS_USAGE);
    return 0;
  }
  let args: BuildsArgs;
  try {
    args = parseBuildsArgs(argv);
  } catch (error) {
    console.error(`kublambda builds: ${(error as Error).message}\n\n${BUILDS_USAGE}`);
    return 2;
  }
  try {
    const kubeConfig = loadKubeConfig();
    const admin = builderAdmin(kubeConfig, platformNamespaceOf(args, process.env));
    console.log(await runBuildsCommand(args, contextNamespace(kubeConfig), { ...admin, now: Date.now }));
    return 0;
  } catch (error) {
    console.error(`kublambda builds: ${describeError(error)}`);
    return 1;
  }
}

const [command, ...rest] = process.argv.slice(2);
if (!command || command === 'help' || command === '--help' || command === '-h') {
  console.log(usage());
} else if (command === 'state') {
  process.exitCode = await state(rest);
} else if (command === 'builds') {
  process.exitCode = await builds(rest);
} else if (command in commands) {
  console.error(`kublambda ${command}: not implemented yet`);
  process.exitCode = 2;
} else {
  console.error(`kublambda: unknown command "${command}"\n\n${usage()}`);
  process.exitCode = 1;
}
