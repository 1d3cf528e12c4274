// `kublambda logs`: a lambda's own console output and the runner's lines about its failures,
// from every runner replica. Runners log JSON lines that carry the lambda's namespace and
// name (libs/logging); this reads the runner pods' logs through the API server (pods/log, as
// `kubectl logs` does) and keeps the lines about one lambda. Nothing is kept anywhere else, so
// what a replica logged before it restarted is gone with it, as with kubectl.
import { UsageError } from './command-line.ts';
import { EXIT_OK } from './exit-codes.ts';
import { CommandError } from './kube-errors.ts';
import type { LambdaClient } from './lambda-client.ts';
import type { Terminal } from './lambda-commands.ts';

export interface LambdaLogEntry {
  time: string;
  /** The runner pod that wrote it. */
  pod: string;
  level: string;
  /** stdout or stderr for the lambda's console output; absent for the runner's own lines. */
  stream?: string;
  requestId?: string;
  message: string;
  /** The whole line as the runner wrote it. */
  raw: Record<string, unknown>;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** --since: 30s, 5m, 2h, 1d (kubectl's spelling), as whole seconds. */
export function parseSince(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  const seconds = match ? Number(match[1]) * UNITS[match[2]!]! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new UsageError(`--since must be a duration such as 30s, 5m, 2h or 1d, not "${text}"`);
  return seconds;
}

const RUNNER_FIELDS = new Set(['level', 'message', 'timestamp', 'namespace', 'lambda', 'requestId', 'stream', 'source', 'component']);

/** The line as an entry when it is about the lambda; anything else (another lambda's, not JSON) is not. */
export function lambdaLogEntry(line: string, lambda: { namespace: string; name: string }, pod: string): LambdaLogEntry | undefined {
  if (!line.startsWith('{')) return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (raw.namespace !== lambda.namespace || raw.lambda !== lambda.name) return undefined;
  const text = (key: string) => (typeof raw[key] === 'string' ? (raw[key] as string) : undefined);
  // The runner's own lines about the lambda carry their details as fields: keep them readable.
  const details = raw.source === 'lambda' ? [] : Object.entries(raw).filter(([key]) => !RUNNER_FIELDS.has(key)).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return {
    time: text('timestamp') ?? '',
    pod,
    level: text('level') ?? 'info',
    stream: raw.source === 'lambda' ? text('stream') : undefined,
    requestId: text('requestId'),
    message: [text('message') ?? '', ...details].filter(Boolean).join(' '),
    raw,
  };
}

/** One line: time, pod, request id, then the console text, or the runner's level and message. */
export function formatLogEntry(entry: LambdaLogEntry): string {
  const who = entry.stream ? (entry.stream === 'stderr' ? 'stderr ' : '') : `[runner ${entry.level}] `;
  return `${entry.time} ${entry.pod} ${entry.requestId ?? '-'} ${who}${entry.message}`;
}

export interface RunnerLogSource {
  pod: string;
  container: string;
}

export interface LogsRun {
  name: string;
  follow: boolean;
  sinceSeconds?: number;
  output: 'text' | 'json';
}

export interface LogsDeps {
  client: LambdaClient;
  runnerPods(): Promise<RunnerLogSource[]>;
  /** Calls onLine for every line of the pod's log; resolves when the log ends (without follow: at once after the last line). */
  readLog(source: RunnerLogSource, options: { follow: boolean; sinceSeconds?: number }, onLine: (line: string) => void): Promise<void>;
}

export async function runLogs(run: LogsRun, deps: LogsDeps, terminal: Terminal): Promise<number> {
  const lambda = await deps.client.get(run.name);
  if (!lambda) throw new CommandError(`Lambda "${run.name}" not found in namespace "${deps.client.namespace}"`);
  const target = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  const sources = await deps.runnerPods();
  if (sources.length === 0) throw new CommandError('no runner pods: nothing serves lambdas yet, so there are no logs to read');
  const print = (entry: LambdaLogEntry) => terminal.out(`${run.output === 'json' ? JSON.stringify({ pod: entry.pod, ...entry.raw }) : formatLogEntry(entry)}\n`);
  if (run.follow) {
    // Every replica's stream at once, each line printed as it comes.
    await Promise.all(
      sources.map((source) =>
        deps.readLog(source, { follow: true, sinceSeconds: run.sinceSeconds }, (line) => {
          const entry = lambdaLogEntry(line, target, source.pod);
          if (entry) print(entry);
        }),
      ),
    );
    return EXIT_OK;
  }
  const entries: LambdaLogEntry[] = [];
  await Promise.all(
    sources.map((source) =>
      deps.readLog(source, { follow: false, sinceSeconds: run.sinceSeconds }, (line) => {
        const entry = lambdaLogEntry(line, target, source.pod);
        if (entry) entries.push(entry);
      }),
    ),
  );
  // One timeline across replicas; a stable sort keeps each pod's own order for equal times.
  for (const entry of entries.sort((a, b) => a.time.localeCompare(b.time))) print(entry);
  if (entries.length === 0) terminal.err(`no log lines about ${target.namespace}/${target.name} on ${sources.length} runner pod(s)${run.sinceSeconds ? ` in the last ${run.sinceSeconds} s` : ''}\n`);
  return EXIT_OK;
}
