import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { runCli, type CliDeps, type KubeOptions } from './cli-program.ts';
import type { LambdaClient } from './lambda-client.ts';
import type { PodRequest } from './pod-http.ts';

/** A terminal and an API client in memory: the lambda is Ready as soon as it is applied. */
function fakes() {
  const out: string[] = [];
  const err: string[] = [];
  const applied: Lambda[] = [];
  const clients: KubeOptions[] = [];
  const sent: PodRequest[] = [];
  const runnerNamespaces: string[] = [];
  const local: Array<[string, string[]]> = [];
  const store = new Map<string, Lambda>();
  const client: LambdaClient = {
    namespace: 'shop',
    server: 'https://k8s',
    apply: async (lambda) => {
      applied.push(lambda);
      const ready = { ...lambda, metadata: { ...lambda.metadata, namespace: 'shop', generation: 1 }, status: { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Serving' }] } } as Lambda;
      store.set(lambda.metadata.name!, ready);
      return ready;
    },
    get: async (name) => store.get(name),
    list: async () => [...store.values()],
    delete: async (name) => store.delete(name),
    events: async () => [],
  };
  const deps: CliDeps = {
    terminal: { out: (t) => out.push(t), err: (t) => err.push(t), isTTY: false, now: () => 0, sleep: async () => {} },
    cwd: '/nonexistent',
    lambdaClient: (options) => (clients.push(options), client),
    state: async () => 0,
    builds: async (argv) => (argv.includes('--bogus') ? 2 : 0),
    runners: (_kube, platformNamespace) => {
      runnerNamespaces.push(platformNamespace);
      return {
        send: async (request) => (sent.push(request), { status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello you') }),
        runnerPods: async () => [{ pod: 'runner-a', container: 'runner' }],
        readLog: async (_source, _options, onLine) => onLine(JSON.stringify({ level: 'info', message: 'hi', namespace: 'shop', lambda: 'hello', source: 'lambda', stream: 'stdout', requestId: 'r1', timestamp: 't1' })),
      };
    },
    controllerAdmin: () => ({
      deadLetters: async () => [],
      retryDeadLetter: async () => {
        throw new Error('no dead letter');
      },
      listTable: async () => ({ entries: [] }),
    }),
    local: async (command, argv) => (local.push([command, argv]), 0),
    defaultPlatformNamespace: 'kublambda-system',
  };
  return { deps, out, err, applied, clients, sent, runnerNamespaces, store, local, stdout: () => out.join(''), stderr: () => err.join('') };
}

describe('runCli', () => {
  it('prints the usage for no arguments and for help (exit 0)', async () => {
    const f = fakes();
    expect(await runCli([], f.deps)).toBe(0);
    expect(f.stdout()).toMatch(/^usage: kublambda <command> \[options\]/);
    expect(f.stdout()).toContain('3  timed out');
    const g = fakes();
    expect(await runCli(['get', '--help'], g.deps)).toBe(0);
    expect(g.stdout()).toMatch(/^usage: kublambda get \[options\] \[name\]/);
  });

  it('exits 2 on an unknown command, option or bad value', async () => {
    for (const argv of [['bogus'], ['get', '--bogus'], ['deploy', 'x.ts', '--memory', 'lots'], ['get', '-o', 'wide'], ['init', 'x', '--template', 'cron'], ['get', 'a', '-A']]) {
      const f = fakes();
      expect([argv, await runCli(argv, f.deps)]).toEqual([argv, 2]);
    }
  });

  it('hands up and down every word after the command, and has help for both', async () => {
    const f = fakes();
    expect(await runCli(['up', '--dir', '/tmp/x', '--reset'], f.deps)).toBe(0);
    expect(await runCli(['down', '--dir', '/tmp/x'], f.deps)).toBe(0);
    expect(f.local).toEqual([['up', ['--dir', '/tmp/x', '--reset']], ['down', ['--dir', '/tmp/x']]]);
    expect(await runCli(['up', '--help'], f.deps)).toBe(0);
    expect(f.stdout()).toMatch(/^usage: kublambda up \[--dir <state dir>\] \[--reset\]/);
    expect(f.local).toHaveLength(2);
  });

  it('invokes a lambda on its trigger through the runner access, in the platform namespace given', async () => {
    const f = fakes();
    f.store.set('hello', { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { name: 'hello', namespace: 'shop' }, spec: { source: { inline: 'x' }, triggers: { http: { path: '/hello' } } } } as Lambda);
    expect(await runCli(['invoke', 'hello', '--path', '?name=you', '-H', 'X-Trace: 1', '--platform-namespace', 'platform'], f.deps)).toBe(0);
    expect(f.stdout()).toContain('hello you');
    expect(f.sent).toEqual([expect.objectContaining({ method: 'GET', path: '/hello?name=you', headers: { 'x-trace': '1' } })]);
    expect(f.runnerNamespaces).toEqual(['platform']);
  });

  it('prints logs, and refuses a bad --since as a usage error', async () => {
    const f = fakes();
    f.store.set('hello', { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { name: 'hello', namespace: 'shop' }, spec: { source: { inline: 'x' } } } as Lambda);
    expect(await runCli(['logs', 'hello', '--since', '5m'], f.deps)).toBe(0);
    expect(f.stdout()).toBe('t1 runner-a r1 hi\n');
    expect(f.runnerNamespaces).toEqual(['kublambda-system']);
    const g = fakes();
    expect(await runCli(['logs', 'hello', '--since', 'yesterday'], g.deps)).toBe(2);
    expect(g.stderr()).toContain("option '--since <duration>' argument 'yesterday' is invalid. must be a duration such as 30s, 5m, 2h or 1d, not \"yesterday\"");
  });

  it('hands state and builds every word after the command', async () => {
    const f = fakes();
    expect(await runCli(['builds', '--bogus'], f.deps)).toBe(2);
    expect(await runCli(['builds', '-A', '--help'], f.deps)).toBe(0);
  });

  it('takes -n, --kubeconfig and --context before or after the command', async () => {
    const f = fakes();
    expect(await runCli(['--context', 'dev', 'get', '-n', 'shop', '--kubeconfig', '/k', '-o', 'json'], f.deps)).toBe(0);
    expect(f.clients).toEqual([{ namespace: 'shop', kubeconfig: '/k', context: 'dev' }]);
    expect(JSON.parse(f.stdout())).toMatchObject({ kind: 'List', items: [] });
  });

  it('says when a lambda is not there (exit 1)', async () => {
    const f = fakes();
    expect(await runCli(['describe', 'nope'], f.deps)).toBe(1);
    expect(f.stderr()).toBe('kublambda describe: Lambda "nope" not found in namespace "shop"\n');
  });

  it('refuses a deploy path that is not there as a usage error', async () => {
    const f = fakes();
    expect(await runCli(['deploy', '/nonexistent/x.ts'], f.deps)).toBe(2);
    expect(f.stderr()).toContain('kublambda deploy: /nonexistent/x.ts: no such file or directory');
  });
});
