// The `kublambda` command: the real terminal, kubeconfig and clients handed to runCli.
// Unfinished: invoke, logs, events and up say they are not implemented yet (exit 1).
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '@kublambda/reconcile-runtime';
import { connectStateRedis, createReadOnlyStateStore } from '@kublambda/state-tables';
import { builderAdmin } from './builder-admin.ts';
import { BUILDS_USAGE, parseBuildsArgs, platformNamespaceOf, runBuildsCommand, type BuildsArgs } from './builds-command.ts';
import { runCli } from './cli-program.ts';
import { UsageError } from './command-line.ts';
import { contextNamespace, kubeDeclaredTables } from './kube-lambdas.ts';
import { lambdaClient, loadKubeConfig, type KubeConfigOptions } from './lambda-client.ts';
import { STATE_USAGE, parseStateArgs, runStateCommand, stateCommandConfig, type StateArgs, type StateCommandConfig } from './state-command.ts';

async function state(argv: string[], kube: KubeConfigOptions): Promise<number> {
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
    const kubeConfig = loadKubeConfig(kube);
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

async function builds(argv: string[], kube: KubeConfigOptions): Promise<number> {
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
    const kubeConfig = loadKubeConfig(kube);
    const admin = builderAdmin(kubeConfig, platformNamespaceOf(args, process.env));
    console.log(await runBuildsCommand(args, contextNamespace(kubeConfig), { ...admin, now: Date.now }));
    return 0;
  } catch (error) {
    console.error(`kublambda builds: ${describeError(error)}`);
    return 1;
  }
}

process.exitCode = await runCli(process.argv.slice(2), {
  terminal: {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    isTTY: Boolean(process.stderr.isTTY),
    now: Date.now,
    sleep: (ms) => sleep(ms),
  },
  cwd: process.cwd(),
  lambdaClient: ({ namespace, ...kube }) => {
    const kubeConfig = loadKubeConfig(kube);
    return lambdaClient(kubeConfig, namespace ?? contextNamespace(kubeConfig));
  },
  state,
  builds,
});
