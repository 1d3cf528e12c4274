import type { ListOptions, ListPage, StateEntry } from '@kublambda/lambda-api';
import { parseCommandLine, shellWord, UsageError } from './command-line.ts';

// `kublambda state <lambda> <table>`: one page of a lambda's state table, for debugging. The
// Lambda is read first so that a table it does not declare is reported as such, not shown as
// an empty table that happens to exist under the same name.

export const STATE_USAGE = `usage: kublambda state <lambda> <table> [options]

Lists the entries of a state table declared by a lambda, one page at a time.

options:
  -n, --namespace NS   the lambda's namespace (default: the kubeconfig context's, else "default")
  --prefix P           only keys starting with P
  --limit N            entries per page, 1 to 1000 (default 100)
  --cursor C           continue after a previous page
  -o, --output FORMAT  text (default; long values shortened) or json (the page, values in full)
  --platform-namespace NS  where api-controller runs (default: $KUBLAMBDA_PLATFORM_NAMESPACE, else kublambda-system)

The table is read through the API server: a port-forward to api-controller's admin API
(pods/portforward in the platform namespace), with the kubeconfig (KUBECONFIG) only.`;

export interface StateArgs {
  lambda: string;
  table: string;
  namespace?: string;
  prefix?: string;
  limit?: number;
  cursor?: string;
  output: 'text' | 'json';
  platformNamespace?: string;
}

export function parseStateArgs(argv: string[]): StateArgs {
  const { values, positionals } = parseCommandLine(argv, {
    namespace: { type: 'string', short: 'n' },
    prefix: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    output: { type: 'string', short: 'o', default: 'text' },
    'platform-namespace': { type: 'string' },
  });
  if (values['platform-namespace'] === '') throw new UsageError('--platform-namespace must not be empty');
  if (positionals.length !== 2) throw new UsageError(`expected <lambda> <table>, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}`);
  const [lambda, table] = positionals as [string, string];
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output must be text or json, not "${values.output}"`);
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit must be a whole number from 1 to 1000, not "${values.limit}"`);
  }
  return { lambda, table, namespace: values.namespace, prefix: values.prefix, limit, cursor: values.cursor, output: values.output, platformNamespace: values['platform-namespace'] };
}

export interface StateCommandDeps {
  /** The lambda's spec.stateTables, or undefined when there is no such Lambda. */
  declaredTables(namespace: string, name: string): Promise<string[] | undefined>;
  /** Asked only once the Lambda is known to declare the table. */
  list(namespace: string, table: string, options: ListOptions): Promise<ListPage>;
}

/** Reads one page and returns what to print. Failures are thrown with a message for the user. */
export async function runStateCommand(args: StateArgs & { namespace: string }, deps: StateCommandDeps): Promise<string> {
  const declared = await deps.declaredTables(args.namespace, args.lambda);
  if (declared === undefined) throw new Error(`Lambda "${args.lambda}" not found in namespace "${args.namespace}"`);
  if (!declared.includes(args.table)) {
    const which = declared.length > 0 ? `it declares ${declared.map((name) => `"${name}"`).join(', ')}` : 'it declares none (spec.stateTables)';
    throw new Error(`Lambda ${args.namespace}/${args.lambda} does not declare the state table "${args.table}": ${which}`);
  }
  const page = await deps.list(args.namespace, args.table, { prefix: args.prefix, limit: args.limit, cursor: args.cursor });
  return args.output === 'json' ? JSON.stringify(page, null, 2) : formatStatePage(page, args);
}

const VALUE_WIDTH = 120;

/** A table of the page's entries, then how to ask for the next page when there is one. */
export function formatStatePage(page: ListPage, args: StateArgs & { namespace: string }): string {
  const rows = page.entries.map((entry) => [printable(entry.key), String(entry.version), expiry(entry), shortened(entry)]);
  const header = ['KEY', 'VERSION', 'EXPIRES', 'VALUE'];
  const widths = header.slice(0, 3).map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const lines = [header, ...rows].map((row) => row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join('  ').trimEnd());
  if (page.entries.length === 0) lines.splice(0, 1, args.cursor ? 'no entries on this page' : 'no entries');
  if (page.cursor) lines.push('', `more: ${nextPageCommand(args, page.cursor)}`);
  return lines.join('\n');
}

function nextPageCommand(args: StateArgs & { namespace: string }, cursor: string): string {
  const words = ['kublambda', 'state', args.lambda, args.table, '-n', args.namespace];
  if (args.prefix !== undefined) words.push('--prefix', args.prefix);
  if (args.limit !== undefined) words.push('--limit', String(args.limit));
  if (args.output !== 'text') words.push('-o', args.output);
  words.push('--cursor', cursor);
  return words.map(shellWord).join(' ');
}

/** A key as it is, unless it holds spaces or control characters: then quoted as JSON. */
function printable(key: string): string {
  return /^[^\s\p{C}]+$/u.test(key) ? key : JSON.stringify(key);
}

function expiry(entry: StateEntry): string {
  return entry.expiresAt === undefined ? '-' : new Date(entry.expiresAt).toISOString();
}

function shortened(entry: StateEntry): string {
  const json = JSON.stringify(entry.value);
  if (json.length <= VALUE_WIDTH) return json;
  return `${json.slice(0, VALUE_WIDTH)}… (${Buffer.byteLength(json)} bytes; -o json shows it all)`;
}
