// Reading a runner's /metrics: the four series the pool windows need, from Prometheus text.
import type { RunnerScrape } from './pool-windows.ts';

export type RunnerSample = NonNullable<RunnerScrape['sample']>;

export const RUNNER_METRICS = {
  inFlight: 'kublambda_runner_in_flight_requests',
  waiting: 'kublambda_runner_waiting_requests',
  answered: 'kublambda_lambda_requests_total',
  cpuSeconds: 'kublambda_runner_cpu_seconds_total',
} as const;

/**
 * The sample in a runner's Prometheus text exposition: each metric summed over its series
 * (answered: every lambda and status code). In-flight and CPU must be there (a runner always
 * exports them); a counter with labels has no series before its first request, so answered and
 * waiting default to 0. Throws on text that is not such an exposition.
 */
export function parseRunnerMetrics(text: string): RunnerSample {
  const sums = new Map<string, number>();
  const wanted = new Set<string>(Object.values(RUNNER_METRICS));
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    const rest = line[nameEnd] === '{' ? line.slice(labelsEnd(line, nameEnd) + 1) : line.slice(nameEnd);
    const value = parseSampleValue(rest.trim().split(/\s+/)[0] ?? '');
    if (value === undefined) throw new Error(`metric ${name} has no numeric value: ${JSON.stringify(line.slice(0, 200))}`);
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  const required = (name: string) => {
    const value = sums.get(name);
    if (value === undefined) throw new Error(`no ${name} in the runner's metrics`);
    return value;
  };
  return {
    inFlight: required(RUNNER_METRICS.inFlight),
    waiting: sums.get(RUNNER_METRICS.waiting) ?? 0,
    answered: sums.get(RUNNER_METRICS.answered) ?? 0,
    cpuSeconds: required(RUNNER_METRICS.cpuSeconds),
  };
}

/** The index of the `}` closing the label set opened at `open`, skipping quoted values (which may hold `}` and escaped quotes). */
function labelsEnd(line: string, open: number): number {
  let quoted = false;
  for (let i = open + 1; i < line.length; i++) {
    const char = line[i];
    if (quoted && char === '\\') i++;
    else if (char === '"') quoted = !quoted;
    else if (char === '}' && !quoted) return i;
  }
  throw new Error(`unterminated label set: ${JSON.stringify(line.slice(0, 200))}`);
}

function parseSampleValue(token: string): number | undefined {
  if (token === 'NaN') return undefined;
  if (token === '+Inf' || token === '-Inf') return undefined;
  const value = Number(token);
  return token !== '' && Number.isFinite(value) ? value : undefined;
}

export type FetchLike = (url: string, init: { signal: AbortSignal }) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

/** Scrapes one runner; any failure (refused, timed out, not 200, unreadable) is `undefined` with the reason handed to onFailure. */
export async function scrapeRunner(url: string, timeoutMs: number, options: { fetch?: FetchLike; onFailure?: (reason: string) => void } = {}): Promise<RunnerSample | undefined> {
  const fetchText = options.fetch ?? (fetch as unknown as FetchLike);
  try {
    const response = await fetchText(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return parseRunnerMetrics(await response.text());
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (error as Error).message;
    options.onFailure?.(`scraping ${url}: ${reason}`);
    return undefined;
  }
}
