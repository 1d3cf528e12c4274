import { describe, expect, it } from '@jest/globals';
import type { BuildRecord } from '@kublambda/build-queue';
import { BUILDER_PODS } from './builder-admin.ts';
import { noPodMessage, readyPodPorts } from './pod-http.ts';
import { formatAge, formatBuildsTable, formatDuration, parseBuildsArgs, platformNamespaceOf, runBuildsCommand, shortDigest } from './builds-command.ts';
import { UsageError } from './command-line.ts';

const hex = (c: string) => c.repeat(64);
const now = Date.parse('2026-12-01T12:00:00Z');
const built: BuildRecord = {
  id: `shop/hello/${hex('a')}`,
  lambda: { namespace: 'shop', name: 'hello' },
  kind: 'asset',
  digest: `sha256:${hex('a')}`,
  output: `sha256:${hex('c')}`,
  state: 'completed',
  createdAt: '2026-12-01T11:55:00.000Z',
  startedAt: '2026-12-01T11:55:01.000Z',
  finishedAt: '2026-12-01T11:55:03.400Z',
  durationMs: 2_400,
  attempts: 1,
  queued: false,
  retryable: false,
};
const failed: BuildRecord = {
  ...built,
  id: `shop/hello/${hex('b')}/image/kublambda.shop-hello`,
  kind: 'image',
  digest: `sha256:${hex('b')}`,
  state: 'failed',
  output: undefined,
  error: 'pushing to registry.local: connect ECONNREFUSED 127.0.0.1:5000 after five attempts with exponential backoff',
  attempts: 5,
  queued: true,
  retryable: true,
};

describe('parseBuildsArgs', () => {
  it.each([
    [[], { command: 'list', allNamespaces: false, output: 'text' }],
    [['-A', '-o', 'json'], { command: 'list', allNamespaces: true, output: 'json' }],
    [['-n', 'shop', '--lambda', 'hello', '--state', 'failed'], { command: 'list', namespace: 'shop', lambda: 'hello', state: 'failed', allNamespaces: false, output: 'text' }],
    [['--platform-namespace', 'platform'], { command: 'list', allNamespaces: false, output: 'text', platformNamespace: 'platform' }],
    [['retry', 'shop/hello/abc'], { command: 'retry', id: 'shop/hello/abc', output: 'text' }],
  ])('%j', (argv, expected) => {
    expect(parseBuildsArgs(argv)).toEqual(expect.objectContaining(expected));
  });

  it.each([
    [['--state', 'done'], '--state must be one of waiting, active, completed, failed, not "done"'],
    [['-o', 'yaml'], '--output must be text or json, not "yaml"'],
    [['-A', '-n', 'shop'], 'give -n NAMESPACE or -A, not both'],
    [['--bogus'], "Unknown option '--bogus'"],
    [['list'], 'unexpected argument "list"'],
    [['retry'], 'retry takes one build id, got 0'],
    [['retry', 'a', 'b'], 'retry takes one build id, got 2'],
    [['retry', 'a', '--state', 'failed'], 'retry takes a build id only, not --state'],
    [['retry', 'a', '-A'], 'retry takes a build id only, not --all-namespaces'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseBuildsArgs(argv)).toThrow(UsageError);
    expect(() => parseBuildsArgs(argv)).toThrow(message);
  });

  it('takes the platform namespace from the flag, then KUBLAMBDA_PLATFORM_NAMESPACE, then kublambda-system', () => {
    expect(platformNamespaceOf(parseBuildsArgs(['--platform-namespace', 'p']), { KUBLAMBDA_PLATFORM_NAMESPACE: 'e' })).toBe('p');
    expect(platformNamespaceOf(parseBuildsArgs([]), { KUBLAMBDA_PLATFORM_NAMESPACE: 'e' })).toBe('e');
    expect(platformNamespaceOf(parseBuildsArgs([]), {})).toBe('kublambda-system');
  });
});

describe('runBuildsCommand', () => {
  const deps = (records: BuildRecord[], seen: unknown[] = []) => ({
    list: async (filter: unknown) => {
      seen.push(filter);
      return records;
    },
    retry: async (id: string) => ({ ...failed, id, state: 'waiting' as const }),
    now: () => now,
  });

  it('asks for the context namespace by default, every namespace with -A, and passes --lambda and --state', async () => {
    const seen: unknown[] = [];
    await runBuildsCommand(parseBuildsArgs([]), 'dev', deps([], seen));
    await runBuildsCommand(parseBuildsArgs(['-A', '--state', 'failed']), 'dev', deps([], seen));
    await runBuildsCommand(parseBuildsArgs(['-n', 'shop', '--lambda', 'hello']), 'dev', deps([], seen));
    expect(seen).toEqual([{ namespace: 'dev' }, { state: 'failed' }, { namespace: 'shop', lambda: 'hello' }]);
  });

  it('prints the records as JSON with -o json', async () => {
    expect(JSON.parse(await runBuildsCommand(parseBuildsArgs(['-o', 'json']), 'dev', deps([built])))).toEqual({ builds: [built] });
  });

  it('says what a retry did', async () => {
    expect(await runBuildsCommand(parseBuildsArgs(['retry', failed.id]), 'dev', deps([]))).toBe(`build ${failed.id} is waiting again (retried)`);
  });
});

describe('formatBuildsTable', () => {
  it('shows kubectl-like columns, short digests, truncated errors, and how to retry', () => {
    expect(formatBuildsTable([failed, built], {}, now).split('\n')).toEqual([
      'LAMBDA       KIND    DIGEST                STATE       DURATION   ATTEMPTS   AGE   ERROR',
      'shop/hello   image   sha256:bbbbbbbbbbbb   failed      2.4s       5          5m    pushing to registry.local: connect ECONNREFUSED 127.0.0.1:5…',
      'shop/hello   asset   sha256:aaaaaaaaaaaa   completed   2.4s       1          5m',
      '',
      'retry with:',
      `  kublambda builds retry shop/hello/${hex('b')}/image/kublambda.shop-hello`,
    ]);
  });

  it('says when there is nothing', () => {
    expect(formatBuildsTable([], { namespace: 'shop' }, now)).toBe('No builds found in shop namespace.');
    expect(formatBuildsTable([], {}, now)).toBe('No builds found.');
  });

  it.each([
    [850, '850ms'],
    [2_449, '2.4s'],
    [59_940, '59.9s'],
    [184_000, '3m4s'],
    [3_720_000, '1h2m'],
  ])('duration %d ms is %s', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it.each([
    [42_000, '42s'],
    [300_000, '5m'],
    [3 * 3_600_000, '3h'],
    [2 * 86_400_000, '2d'],
    [-5, '0s'],
  ])('age %d ms is %s', (ms, text) => expect(formatAge(ms)).toBe(text));

  it('shortens digests as kubectl does', () => {
    expect(shortDigest(`sha256:${hex('f')}`)).toBe('sha256:ffffffffffff');
  });
});

describe('readyPodPorts', () => {
  const pod = (name: string, options: { ready?: boolean; admin?: boolean; deleting?: boolean } = {}) => ({
    metadata: { name, ...(options.deleting ? { deletionTimestamp: new Date() } : {}) },
    spec: { containers: [{ name: 'builder', ports: [{ name: options.admin === false ? 'metrics' : 'admin', containerPort: 9100 }] }] },
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
  });

  it('takes the first Ready pod with an admin port, by name', () => {
    expect(readyPodPorts([pod('c'), pod('a', { ready: false }), pod('b')], 'admin')).toEqual([{ name: 'b', port: 9100 }, { name: 'c', port: 9100 }]);
  });

  it('finds none among pods not Ready, deleting, or without an admin port', () => {
    expect(readyPodPorts([pod('a', { ready: false }), pod('b', { admin: false }), pod('c', { deleting: true })], 'admin')).toEqual([]);
    expect(noPodMessage(BUILDER_PODS, 'kublambda-system')).toBe(
      'no Ready pod labelled app.kubernetes.io/name=kublambda-builder,app.kubernetes.io/component=builder with a container port named "admin" in kublambda-system: is the builder running with ADMIN_PORT set?',
    );
  });
});
