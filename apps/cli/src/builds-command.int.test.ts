// `kublambda builds` as a user runs it: the command in a process of its own with a kubeconfig
// and nothing else (no Redis address or credential), reaching the builder's admin API through
// the shared test API server's port-forward to a kublambda-builder pod. kwok makes that pod
// Ready and forwards its admin port to the builder, which runs here as a local process against
// a real redis-server under its own Redis user.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Queue } from 'bullmq';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { BUILD_JOB_OPTIONS, BUILD_QUEUE, BUILD_QUEUE_PREFIX, buildJobId, type BuildJobData, type BuildJobResult, type BuildRecord, type LambdaRef } from '@kublambda/build-queue';
import { BUILDER_POD_LABELS } from '@kublambda/crd-types';
import {
  createTestNamespace,
  freePort,
  serviceAccountKubeconfig,
  startPlatformService,
  startPodStandIn,
  startRedis,
  testKubeConfig,
  waitUntil,
  type ManagedProcess,
  type PodStandIn,
  type RedisServer,
} from '@kublambda/dev-servers';

const TIMEOUT = 120_000;
const main = path.join(import.meta.dirname, 'main.ts');
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const ok: LambdaRef = { namespace: 'shop', name: 'hello' };
const bad: LambdaRef = { namespace: 'shop', name: 'typo' };
const broken: LambdaRef = { namespace: 'shop', name: 'broken' };
const other: LambdaRef = { namespace: 'elsewhere', name: 'hello' };
const okId = buildJobId(ok, digest('a'));
const badId = buildJobId(bad, digest('b'));
const brokenId = buildJobId(broken, digest('c'));
const otherId = buildJobId(other, digest('d'));
const hello = { 'index.ts': 'export default async () => new Response("hello")' };

const kubeConfig = testKubeConfig();
let redis: RedisServer;
let dir: string;
let builder: ManagedProcess;
let platform: { name: string; delete(): Promise<void> };
let standIn: PodStandIn;
let connection: Redis;
let queue: Queue<BuildJobData, BuildJobResult>;

const job = (lambda: LambdaRef, sourceDigest: string, files: Record<string, string> | null): BuildJobData =>
  ({ lambda, sourceDigest, runtime: 'nodejs', files, entrypoint: 'index.ts', typeCheck: false }) as BuildJobData;

/** The CLI as a process: KUBECONFIG and HOME only, so nothing of Redis can reach it. */
function kublambda(args: string[], kubeconfig = process.env.KUBECONFIG!) {
  return execa(process.execPath, [main, 'builds', ...args], {
    reject: false,
    extendEnv: false,
    env: { KUBECONFIG: kubeconfig, HOME: os.homedir(), KUBLAMBDA_PLATFORM_NAMESPACE: platform.name },
    timeout: 60_000,
  });
}

async function listJson(args: string[]): Promise<BuildRecord[]> {
  const result = await kublambda([...args, '-o', 'json']);
  if (result.exitCode !== 0) throw new Error(`kublambda builds ${args.join(' ')} failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { builds: BuildRecord[] }).builds;
}

beforeAll(async () => {
  [redis, platform, dir] = await Promise.all([startRedis(), createTestNamespace(kubeConfig, 'cli-builds'), mkdtemp(path.join(os.tmpdir(), 'kublambda-cli-builds-'))]);
  const adminPort = await freePort();
  builder = await startPlatformService(
    'builder',
    { REDIS_URL: redis.urlFor('builder'), ARTIFACT_STORE_URL: `file://${dir}/assets`, BUILDER_CACHE_DIR: path.join(dir, 'cache'), ADMIN_PORT: String(adminPort), BUILD_BOARD_ACTIONS: 'true' },
    { logDir: dir },
  );
  standIn = await startPodStandIn(kubeConfig, {
    namespace: platform.name,
    name: 'kublambda-builder',
    labels: BUILDER_POD_LABELS,
    port: { name: 'admin', containerPort: 9100 },
    target: { address: '127.0.0.1', port: adminPort },
  });

  // Builds requested as api-controller requests them, through the admin Redis user so the test may inspect everything.
  connection = new Redis(redis.adminUrl, { maxRetriesPerRequest: null });
  queue = new Queue(BUILD_QUEUE, { connection, prefix: BUILD_QUEUE_PREFIX });
  const options = BUILD_JOB_OPTIONS;
  await queue.add('build', job(ok, digest('a'), hello), { ...options, jobId: okId });
  await queue.add('build', job(bad, digest('b'), { 'index.ts': 'export default async () => { return new Response("x" }' }), { ...options, jobId: badId });
  // No files: not the source's fault, so the build throws (a failed job; one attempt here).
  await queue.add('build', job(broken, digest('c'), null), { ...options, attempts: 1, jobId: brokenId });
  await queue.add('build', job(other, digest('d'), hello), { ...options, jobId: otherId });
  let counts: Record<string, number> = {};
  await waitUntil(
    'the four builds to finish',
    async () => {
      counts = await queue.getJobCounts('completed', 'failed');
      return counts.completed === 3 && counts.failed === 1;
    },
    { timeoutMs: 90_000, intervalMs: 250, describe: () => JSON.stringify(counts) },
  );
  // kwok learns of the pod's PortForward through its watch: wait until the command gets through.
  let last = '';
  await waitUntil(
    'kublambda builds to reach the builder through the port-forward',
    async () => {
      const result = await kublambda(['-A', '-o', 'json']);
      last = result.stderr;
      return result.exitCode === 0;
    },
    { timeoutMs: 60_000, intervalMs: 500, describe: () => last },
  );
}, 180_000);

afterAll(async () => {
  await queue?.close();
  connection?.disconnect();
  await standIn?.delete();
  await builder?.stop();
  await Promise.all([redis?.stop(), platform?.delete()]);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('kublambda builds', () => {
  it("lists a namespace's builds with kubectl-like columns, the failed ones with their errors", async () => {
    const result = await kublambda(['-n', 'shop']);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^LAMBDA\s+KIND\s+DIGEST\s+STATE\s+DURATION\s+ATTEMPTS\s+AGE\s+ERROR$/);
    const row = (lambda: string) => lines.find((line) => line.startsWith(`${lambda} `)) ?? '';
    expect(row('shop/hello')).toMatch(/^shop\/hello\s+asset\s+sha256:aaaaaaaaaaaa\s+completed\s+\S+s\s+1\s+\d+s$/);
    // Ran to the end, but the source is at fault: failed, with the compiler's message.
    expect(row('shop/typo')).toMatch(/^shop\/typo\s+asset\s+sha256:bbbbbbbbbbbb\s+failed\s+\S+s\s+1\s+\d+s\s+index\.ts:1:\d+: Expected "\)" but found "}"/);
    expect(row('shop/broken')).toMatch(/^shop\/broken\s+asset\s+sha256:cccccccccccc\s+failed\s+\S+\s+1\s+\d+s\s+\S/);
    expect(result.stdout).not.toContain('elsewhere/');
    // Only the failed job can be retried (the compile error would only fail again).
    expect(lines.slice(-2)).toEqual(['retry with:', `  kublambda builds retry ${brokenId}`]);
  }, TIMEOUT);

  it('prints the records as JSON with -o json, every namespace with -A', async () => {
    const builds = await listJson(['-A']);
    expect(builds.map((b) => b.id).sort()).toEqual([brokenId, badId, okId, otherId].sort());
    const typo = builds.find((b) => b.id === badId)!;
    expect(typo).toMatchObject({ lambda: bad, kind: 'asset', digest: digest('b'), state: 'failed', reason: 'CompileFailed', attempts: 1, queued: true, retryable: false });
    expect(typo.error).toContain('Expected ")" but found "}"');
    const built = builds.find((b) => b.id === okId)!;
    expect(built).toMatchObject({ state: 'completed', retryable: false });
    expect(built.output).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.durationMs).toBeGreaterThanOrEqual(0);
  }, TIMEOUT);

  it('filters by --state and --lambda', async () => {
    expect((await listJson(['-A', '--state', 'failed'])).map((b) => b.id).sort()).toEqual([brokenId, badId].sort());
    expect((await listJson(['-A', '--lambda', 'hello'])).map((b) => b.id).sort()).toEqual([okId, otherId].sort());
    expect((await listJson(['-n', 'elsewhere', '--state', 'completed'])).map((b) => b.id)).toEqual([otherId]);
  }, TIMEOUT);

  it('refuses bad flags with the usage (exit 2)', async () => {
    const result = await kublambda(['--state', 'done']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('kublambda builds: --state must be one of waiting, active, completed, failed, not "done"');
    expect(result.stderr).toContain('usage: kublambda builds');
  }, TIMEOUT);

  it('retries a failed build, which runs again; refuses one that is not failed, and an unknown id', async () => {
    // What made it fail is fixed (here: the job gets its files), as a transient failure passes.
    await (await queue.getJob(brokenId))!.updateData(job(broken, digest('c'), hello));
    const retried = await kublambda(['retry', brokenId]);
    expect(retried.stderr).toBe('');
    expect(retried.stdout).toMatch(new RegExp(`^build ${brokenId} is (waiting|active|completed) again \\(retried\\)$`));
    const record = await waitUntil('the retried build to complete', async () => {
      const [again] = await listJson(['-n', 'shop', '--lambda', 'broken']);
      return again?.state === 'completed' && again;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    // Its attempts counted afresh: the whole retry budget again.
    expect(record).toMatchObject({ id: brokenId, state: 'completed', attempts: 1, retryable: false });
    expect(record.output).toMatch(/^sha256:[0-9a-f]{64}$/);

    const notFailed = await kublambda(['retry', okId]);
    expect(notFailed.exitCode).toBe(1);
    expect(notFailed.stderr).toBe(`kublambda builds: the builder's admin API answered 409: build "${okId}" is not failed: it is completed`);
    const compileError = await kublambda(['retry', badId]);
    expect(compileError.stderr).toContain('could not be built');
    const unknown = await kublambda(['retry', 'shop/nope/0123']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toBe(`kublambda builds: the builder's admin API answered 404: no build "shop/nope/0123" in the queue`);
  }, TIMEOUT);

  it('says when no builder pod is there', async () => {
    const empty = await createTestNamespace(kubeConfig, 'no-builder');
    try {
      const result = await kublambda(['-A', '--platform-namespace', empty.name]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toBe(
        `kublambda builds: no Ready pod labelled app.kubernetes.io/name=kublambda-builder,app.kubernetes.io/component=builder with a container port named "admin" in ${empty.name}: is the builder running with ADMIN_PORT set?`,
      );
    } finally {
      await empty.delete();
    }
  }, TIMEOUT);

  it('is governed by RBAC: a ServiceAccount without pods/portforward is refused, the documented Role lets it in', async () => {
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const rbac = kubeConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
    const namespace = platform.name;
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'viewer' } } });
    const bind = async (role: string) =>
      rbac.createNamespacedRoleBinding({
        namespace,
        body: { metadata: { name: role }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role }, subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace }] },
      });
    await rbac.createNamespacedRole({ namespace, body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] } });
    await bind('pod-reader');
    const token = await core.createNamespacedServiceAccountToken({ namespace, name: 'viewer', body: { spec: { audiences: [], expirationSeconds: 600 } } });
    const kubeconfig = path.join(dir, 'viewer.kubeconfig');
    await writeFile(kubeconfig, serviceAccountKubeconfig(kubeConfig, namespace, 'viewer', token.status!.token!), { mode: 0o600 });

    const refused = await kublambda(['-A'], kubeconfig);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`kublambda builds: not allowed: this needs "get" and "create" on pods/portforward in ${namespace}`);

    // The Role docs/images.md gives: read the builder pods, port-forward to them.
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: 'kublambda-builds' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }, { apiGroups: [''], resources: ['pods/portforward'], verbs: ['get', 'create'] }] },
    });
    await bind('kublambda-builds');
    let last = '';
    const allowed = await waitUntil('the new RoleBinding to take effect', async () => {
      const result = await kublambda(['-A', '-o', 'json'], kubeconfig);
      last = result.stderr;
      return result.exitCode === 0 && result;
    }, { timeoutMs: 30_000, intervalMs: 250, describe: () => last });
    expect((JSON.parse(allowed.stdout) as { builds: unknown[] }).builds.length).toBe(4);
  }, TIMEOUT);
});
