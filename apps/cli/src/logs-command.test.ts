import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { UsageError } from './command-line.ts';
import type { LambdaClient } from './lambda-client.ts';
import { formatLogEntry, lambdaLogEntry, parseSince, runLogs, type LogsDeps } from './logs-command.ts';

const target = { namespace: 'shop', name: 'hello' };
const line = (fields: Record<string, unknown>) => JSON.stringify({ component: 'runner', namespace: 'shop', lambda: 'hello', level: 'info', ...fields });

describe('parseSince', () => {
  it.each([
    ['30s', 30],
    ['5m', 300],
    ['2h', 7_200],
    ['1d', 86_400],
  ])('%s is %d s', (text, seconds) => expect(parseSince(text)).toBe(seconds));

  it.each(['', '0s', '5', 'm', '1.5h', '-5m', '5 m', '5w'])('refuses "%s"', (text) => {
    expect(() => parseSince(text)).toThrow(new UsageError(`--since must be a duration such as 30s, 5m, 2h or 1d, not "${text}"`));
  });
});

describe('lambdaLogEntry', () => {
  it("keeps the lambda's console lines with their stream and request id", () => {
    const entry = lambdaLogEntry(line({ message: 'hello from the lambda', source: 'lambda', stream: 'stderr', requestId: 'r1', timestamp: '2026-12-02T10:00:00.000Z' }), target, 'runner-a');
    expect(entry).toMatchObject({ time: '2026-12-02T10:00:00.000Z', pod: 'runner-a', stream: 'stderr', requestId: 'r1', message: 'hello from the lambda' });
    expect(formatLogEntry(entry!)).toBe('2026-12-02T10:00:00.000Z runner-a r1 stderr hello from the lambda');
  });

  it("keeps the runner's lines about the lambda, with their details", () => {
    const entry = lambdaLogEntry(line({ level: 'warn', message: 'invocation failed', kind: 'timeout', error: 'no answer in 3 s', requestId: 'r2', timestamp: 't' }), target, 'runner-b');
    expect(formatLogEntry(entry!)).toBe('t runner-b r2 [runner warn] invocation failed kind=timeout error=no answer in 3 s');
  });

  it("drops other lambdas' lines, lines of no lambda, and what is not JSON", () => {
    expect(lambdaLogEntry(line({ lambda: 'other', message: 'x' }), target, 'p')).toBeUndefined();
    expect(lambdaLogEntry(line({ namespace: 'other', message: 'x' }), target, 'p')).toBeUndefined();
    expect(lambdaLogEntry(JSON.stringify({ level: 'info', message: 'listening' }), target, 'p')).toBeUndefined();
    expect(lambdaLogEntry('plain text', target, 'p')).toBeUndefined();
    expect(lambdaLogEntry('{not json', target, 'p')).toBeUndefined();
  });
});

describe('runLogs', () => {
  const found = { metadata: { name: 'hello', namespace: 'shop' }, spec: {} } as unknown as Lambda;
  function deps(logs: Record<string, string[]>) {
    const out: string[] = [];
    const err: string[] = [];
    const asked: Array<{ pod: string; follow: boolean; sinceSeconds?: number }> = [];
    const logsDeps: LogsDeps = {
      client: { namespace: 'shop', get: async (name: string) => (name === 'hello' ? found : undefined) } as unknown as LambdaClient,
      runnerPods: async () => Object.keys(logs).map((pod) => ({ pod, container: 'runner' })),
      readLog: async (source, options, onLine) => {
        asked.push({ pod: source.pod, ...options });
        for (const text of logs[source.pod]!) onLine(text);
      },
    };
    const terminal = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), isTTY: false, now: () => 0, sleep: async () => {} };
    return { logsDeps, terminal, out, err, asked };
  }

  it('merges every replica into one timeline', async () => {
    const d = deps({
      'runner-a': [line({ message: 'one', source: 'lambda', stream: 'stdout', requestId: 'r1', timestamp: '2026-12-02T10:00:01Z' }), line({ lambda: 'other', message: 'x', timestamp: '2026-12-02T10:00:02Z' })],
      'runner-b': [line({ message: 'zero', source: 'lambda', stream: 'stdout', requestId: 'r0', timestamp: '2026-12-02T10:00:00Z' })],
    });
    expect(await runLogs({ name: 'hello', follow: false, sinceSeconds: 60, output: 'text' }, d.logsDeps, d.terminal)).toBe(0);
    expect(d.out.join('')).toBe('2026-12-02T10:00:00Z runner-b r0 zero\n2026-12-02T10:00:01Z runner-a r1 one\n');
    expect(d.asked).toEqual([
      { pod: 'runner-a', follow: false, sinceSeconds: 60 },
      { pod: 'runner-b', follow: false, sinceSeconds: 60 },
    ]);
  });

  it('prints JSON lines with their pod for -o json', async () => {
    const d = deps({ 'runner-a': [line({ message: 'one', timestamp: 't' })] });
    await runLogs({ name: 'hello', follow: true, output: 'json' }, d.logsDeps, d.terminal);
    expect(JSON.parse(d.out.join(''))).toEqual({ pod: 'runner-a', component: 'runner', namespace: 'shop', lambda: 'hello', level: 'info', message: 'one', timestamp: 't' });
    expect(d.asked).toEqual([{ pod: 'runner-a', follow: true, sinceSeconds: undefined }]);
  });

  it('says when there are no lines, no runners, or no such lambda', async () => {
    const d = deps({ 'runner-a': [] });
    expect(await runLogs({ name: 'hello', follow: false, output: 'text' }, d.logsDeps, d.terminal)).toBe(0);
    expect(d.err.join('')).toBe('no log lines about shop/hello on 1 runner pod(s)\n');
    await expect(runLogs({ name: 'hello', follow: false, output: 'text' }, deps({}).logsDeps, d.terminal)).rejects.toThrow('no runner pods: nothing serves lambdas yet');
    await expect(runLogs({ name: 'nope', follow: false, output: 'text' }, d.logsDeps, d.terminal)).rejects.toThrow('Lambda "nope" not found in namespace "shop"');
  });
});
