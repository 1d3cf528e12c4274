import { BUILD_STATES, type BuildFilter, type BuildRecord, type BuildState } from '@kublambda/build-queue';
import { parseCommandLine, shellWord, UsageError } from './command-line.ts';

// `kublambda builds`: the build queue (asset and image builds), read from the builder's admin
// API through a port-forward to the builder pod, so Kubernetes RBAC governs it (see
// docs/images.md, "Inspecting builds"). This module is the command without I/O.

export const DEFAULT_PLATFORM_NAMESPACE = 'kublambda-system';

export const BUILDS_USAGE = `usage: kublambda builds [options]
       kublambda builds retry <id> [options]

Lists builds (newest first): the lambda, kind (asset or image), the digest built from (the
source's for an asset, the asset's for an image), state, duration, attempts, age and error.
"retry" runs a failed build again (the builder must allow it: BUILD_BOARD_ACTIONS=true).

options:
  -n, --namespace NS          builds of lambdas in NS (default: the kubeconfig context's, else "default")
  -A, --all-namespaces        builds of every namespace
  --lambda NAME               builds of the lambda NAME only
  --state STATE               ${BUILD_STATES.join(', ')}
  -o, --output FORMAT         text (default) or json (the full records)
  --platform-namespace NS     where the builder runs (default: $KUBLAMBDA_PLATFORM_NAMESPACE, else ${DEFAULT_PLATFORM_NAMESPACE})

It reaches the builder as kubectl port-forward does, through the API server with the
kubeconfig (KUBECONFIG or ~/.kube/config): it needs "list" on pods and "get" and "create" on
pods/portforward in the platform namespace.

examples:
  kublambda builds -A
  kublambda builds -n shop --state failed
  kublambda builds retry 'shop/hello/4f2c...'

exit codes: 0 done, 1 failed, 2 bad command line`;

export type BuildsArgs =
  | { command: 'list'; namespace?: string; allNamespaces: boolean; lambda?: string; state?: BuildState; output: 'text' | 'json'; platformNamespace?: string }
  | { command: 'retry'; id: string; output: 'text' | 'json'; platformNamespace?: string };

export function parseBuildsArgs(argv: string[]): BuildsArgs {
  const { values, positionals } = parseCommandLine(argv, {
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A', default: false },
    lambda: { type: 'string' },
    state: { type: 'string' },
    output: { type: 'string', short: 'o', default: 'text' },
    'platform-namespace': { type: 'string' },
  });
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output must be text or json, not "${values.output}"`);
  const output = values.output;
  const platformNamespace = values['platform-namespace'];
  if (platformNamespace === '') throw new UsageError('--platform-namespace must not be empty');
  if (positionals[0] === 'retry') {
    if (positionals.length !== 2) throw new UsageError(`retry takes one build id, got ${positionals.length - 1}`);
    const refused = (['namespace', 'lambda', 'state'] as const).filter((option) => values[option] !== undefined);
    if (values['all-namespaces']) refused.push('all-namespaces' as never);
    if (refused.length > 0) throw new UsageError(`retry takes a build id only, not --${refused.join(', --')}`);
    return { command: 'retry', id: positionals[1]!, output, platformNamespace };
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" (the only subcommand is "retry <id>")`);
  if (values.state !== undefined && !(BUILD_STATES as readonly string[]).includes(values.state)) {
    throw new UsageError(`--state must be one of ${BUILD_STATES.join(', ')}, not "${values.state}"`);
  }
  if (values['all-namespaces'] && values.namespace !== undefined) throw new UsageError('give -n NAMESPACE or -A, not both');
  return {
    command: 'list',
    namespace: values.namespace,
    allNamespaces: values['all-namespaces'],
    lambda: values.lambda,
    state: values.state as BuildState | undefined,
    output,
    platformNamespace,
  };
}

/** --platform-namespace, else KUBLAMBDA_PLATFORM_NAMESPACE, else kublambda-system. */
export function platformNamespaceOf(args: { platformNamespace?: string }, env: Record<string, string | undefined>): string {
  return args.platformNamespace ?? (env.KUBLAMBDA_PLATFORM_NAMESPACE || DEFAULT_PLATFORM_NAMESPACE);
}

export interface BuildsCommandDeps {
  list(filter: BuildFilter): Promise<BuildRecord[]>;
  retry(id: string): Promise<BuildRecord>;
  now(): number;
}

/** Runs the command and returns what to print. Failures are thrown with a message for the user. */
export async function runBuildsCommand(args: BuildsArgs, defaultNamespace: string, deps: BuildsCommandDeps): Promise<string> {
  if (args.command === 'retry') {
    const record = await deps.retry(args.id);
    return args.output === 'json' ? JSON.stringify(record, null, 2) : `build ${record.id} is ${record.state} again (retried)`;
  }
  const filter: BuildFilter = {
    ...(args.allNamespaces ? {} : { namespace: args.namespace ?? defaultNamespace }),
    ...(args.lambda !== undefined ? { lambda: args.lambda } : {}),
    ...(args.state !== undefined ? { state: args.state } : {}),
  };
  const records = await deps.list(filter);
  if (args.output === 'json') return JSON.stringify({ builds: records }, null, 2);
  return formatBuildsTable(records, filter, deps.now());
}

const ERROR_WIDTH = 60;
const HEADER = ['LAMBDA', 'KIND', 'DIGEST', 'STATE', 'DURATION', 'ATTEMPTS', 'AGE', 'ERROR'];

/** kubectl-like columns; then how to retry the failed builds that are still queued. */
export function formatBuildsTable(records: BuildRecord[], filter: BuildFilter, now: number): string {
  if (records.length === 0) return filter.namespace === undefined ? 'No builds found.' : `No builds found in ${filter.namespace} namespace.`;
  const rows = records.map((record) => [
    `${record.lambda.namespace}/${record.lambda.name}`,
    record.kind,
    shortDigest(record.digest),
    record.state,
    record.durationMs === undefined ? '-' : formatDuration(record.durationMs),
    String(record.attempts),
    formatAge(now - Date.parse(record.createdAt)),
    record.error ? oneLine(record.error, ERROR_WIDTH) : '',
  ]);
  const last = HEADER.length - 1;
  const widths = HEADER.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const lines = [HEADER, ...rows].map((row) => row.map((cell, column) => (column < last ? cell.padEnd(widths[column]!) : cell)).join('   ').trimEnd());
  const retryable = records.filter((record) => record.retryable);
  if (retryable.length > 0) lines.push('', 'retry with:', ...retryable.map((record) => `  kublambda builds retry ${shellWord(record.id)}`));
  return lines.join('\n');
}

/** sha256:4f2c9a1b3d5e..., as kubectl shows image digests in short: the first 12 hex digits. */
export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.includes(':') ? digest.split(':', 2) : ['', digest];
  return `${algorithm ? `${algorithm}:` : ''}${hex!.slice(0, 12)}`;
}

/** 850ms, 2.5s, 3m4s, 1h2m. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.round(ms / 100) / 10).toString()}s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3_600)}h${Math.floor((seconds % 3_600) / 60)}m`;
}

/** kubectl's AGE: 42s, 5m, 3h, 2d. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1_000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3_600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function oneLine(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}
