// The `kublambda` command: the real terminal, kubeconfig and clients handed to runCli.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '@kublambda/reconcile-runtime';
import { builderAdmin } from './builder-admin.ts';
import { BUILDS_USAGE, DEFAULT_PLATFORM_NAMESPACE, parseBuildsArgs, platformNamespaceOf, runBuildsCommand, type BuildsArgs } from './builds-command.ts';
import { runCli } from './cli-program.ts';
import { UsageError } from './command-line.ts';
import { contextNamespace, kubeDeclaredTables } from './kube-lambdas.ts';
import { lambdaClient, loadKubeConfig, type KubeConfigOptions } from './lambda-client.ts';
import { listRunnerLogSources, readRunnerLog, sendToRunner } from './runner-pods.ts';
import { STATE_USAGE, parseStateArgs, runStateCommand, type StateArgs } from './state-command.ts';
import { controllerAdmin } from './controller-admin.ts';

async function state(argv: string[], kube: KubeConfigOptions): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STATE_USAGE);
    return 0;
  }
  let args: StateArgs;
  try {
    args = parseStateArgs(argv);
  } catch (error) {
    console.error(`kublambda state: ${(error as Error).message}\n\n${STATE_USAGE}`);
    return error instanceof UsageError ? 2 : 1;
  }
  try {
    const kubeConfig = loadKubeConfig(kube);
    const output = await runStateCommand(
      { ...args, namespace: args.namespace ?? contextNamespace(kubeConfig) },
      {
        declaredTables: kubeDeclaredTables(kubeConfig),
        list: (namespace, table, options) => controllerAdmin(kubeConfig, platformNamespaceOf(args, process.env)).listTable(namespace, table, options),
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
  runners: (kube, platformNamespace) => {
    const kubeConfig = loadKubeConfig(kube);
    return {
      send: (request) => sendToRunner(kubeConfig, platformNamespace, request),
      runnerPods: () => listRunnerLogSources(kubeConfig, platformNamespace),
      readLog: (source, options, onLine) => readRunnerLog(kubeConfig, platformNamespace, source, options, onLine),
    };
  },
  local: async (command, argv) => {
    // The local platform lives in the checkout (tools/local), beside this file's app.
    const script = path.resolve(import.meta.dirname, '../../../tools/local', `${command}.ts`);
    if (!existsSync(script)) {
      console.error(`kublambda ${command}: the local platform runs from a checkout of the repository (npm run ${command} there); ${script} is not here`);
      return 1;
    }
    const child = spawn(process.execPath, [script, ...argv], { stdio: 'inherit' });
    // Ctrl-C reaches the child too (the same process group): wait for it to stop everything.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    const code = await new Promise<number>((resolve) => child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))));
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
    return code;
  },
  controllerAdmin: (kube, platformNamespace) => controllerAdmin(loadKubeConfig(kube), platformNamespace),
  defaultPlatformNamespace: process.env.KUBLAMBDA_PLATFORM_NAMESPACE || DEFAULT_PLATFORM_NAMESPACE,
});
