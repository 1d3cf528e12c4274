// The builder's admin server against a real Redis, with the builder running as a local process
// under its own restricted Redis user: health, metrics, and the build board in headless Chromium.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BUILD_JOB_OPTIONS, BUILD_QUEUE, BUILD_QUEUE_PREFIX, buildJobId, type BuildJobData, type BuildJobResult, type LambdaRef } from '@kublambda/build-queue';
import { freePort, startPlatformService, startRedis, waitUntil, type ManagedProcess, type RedisServer } from '@kublambda/dev-servers';
import { listeningAddresses } from './listening-ports.testing.ts';

const TIMEOUT = 120_000;
const screenshots = path.resolve(import.meta.dirname, '../../../test-results');

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const ok: LambdaRef = { namespace: 'shop', name: 'hello' };
const bad: LambdaRef = { namespace: 'shop', name: 'typo' };
const broken: LambdaRef = { namespace: 'shop', name: 'broken' };
const okId = buildJobId(ok, digest('a'));
const badId = buildJobId(bad, digest('b'));
const brokenId = buildJobId(broken, digest('c'));
const compileMessage = 'Expected ")" but found "}"';

let redis: RedisServer;
let dir: string;
let builder: ManagedProcess;
let port: number;
let connection: Redis;
let queue: Queue<BuildJobData, BuildJobResult>;
let browser: Browser | undefined;
const started: ManagedProcess[] = [];

const board = (suffix = '') => `http://127.0.0.1:${port}/builds/${suffix}`;
const builderEnv = () => ({ REDIS_URL: redis.urlFor('builder'), ARTIFACT_STORE_URL: `file://${dir}/assets`, BUILDER_CACHE_DIR: path.join(dir, 'cache') });
const job = (lambda: LambdaRef, sourceDigest: string, files: Record<string, string>): BuildJobData => ({ lambda, sourceDigest, runtime: 'nodejs', files, entrypoint: 'index.ts', typeCheck: false });

beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-build-board-'));
  port = await freePort();
  // The builder's own Redis user: bull-board runs under the builder's rule (libs/redis-acl).
  builder = await startPlatformService('builder', { ...builderEnv(), ADMIN_PORT: String(port) }, { logDir: dir });
  started.push(builder);
  // Requests builds as api-controller does (same options); the admin user so the test may inspect everything.
  connection = new Redis(redis.adminUrl, { maxRetriesPerRequest: null });
  queue = new Queue(BUILD_QUEUE, { connection, prefix: BUILD_QUEUE_PREFIX });
  const options = BUILD_JOB_OPTIONS;
  await queue.add('build', job(ok, digest('a'), { 'index.ts': 'export default async () => new Response("hello")' }), { ...options, jobId: okId });
  await queue.add('build', job(bad, digest('b'), { 'index.ts': 'export default async () => { return new Response("x" }' }), { ...options, jobId: badId });
  // No files at all: not the source's fault, so the build throws (an error, retried: one attempt here).
  await queue.add('build', job(broken, digest('c'), null as unknown as Record<string, string>), { ...options, attempts: 1, jobId: brokenId });
  let counts: Record<string, number> = {};
  await waitUntil(
    'the three builds to finish',
    async () => {
      counts = await queue.getJobCounts('completed', 'failed');
      return counts.completed === 2 && counts.failed === 1;
    },
    { timeoutMs: 90_000, intervalMs: 250, describe: () => JSON.stringify(counts) },
  );
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 60_000 });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await queue?.close();
  connection?.disconnect();
  for (const process of started.reverse()) await process.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

async function openBoard(url: string): Promise<Page> {
  const page = await browser!.newPage();
  page.setDefaultTimeout(30_000);
  const response = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  expect(response?.status()).toBe(200);
  return page;
}

describe('the admin server', () => {
  it('listens where ADMIN_PORT says, on loopback', async () => {
    expect(await listeningAddresses(builder.pid)).toEqual([`127.0.0.1:${port}`]);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('counts builds by result and reports the queue depth on /metrics', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('kublambda_builder_builds_total{kind="asset",result="succeeded"} 1');
    expect(text).toContain('kublambda_builder_builds_total{kind="asset",result="failed"} 1');
    expect(text).toContain('kublambda_builder_builds_total{kind="asset",result="error"} 1');
    expect(text).toContain('kublambda_builder_build_duration_seconds_count{kind="asset"} 3');
    expect(text).toContain('kublambda_builder_queue_depth{state="completed"} 2');
    expect(text).toContain('kublambda_builder_queue_depth{state="failed"} 1');
    for (const state of ['waiting', 'active', 'delayed']) expect(text).toContain(`kublambda_builder_queue_depth{state="${state}"} 0`);
  });
});

describe('the build board', () => {
  it('loads and lists the build queue', async () => {
    const page = await openBoard(board());
    await page.getByRole('link', { name: 'builds', exact: true }).first().waitFor();
    await page.close();
  });

  it('shows the completed builds, with the compile error of the one whose source is at fault', async () => {
    const page = await openBoard(board(`queue/${BUILD_QUEUE}?status=completed`));
    await page.getByText(okId, { exact: true }).waitFor();
    await page.getByText(badId, { exact: true }).waitFor();
    await page.getByText('CompileFailed').waitFor();
    await page.getByText(compileMessage, { exact: false }).waitFor();
    await page.getByText(compileMessage, { exact: false }).scrollIntoViewIfNeeded();
    await mkdir(screenshots, { recursive: true });
    // The viewport, scrolled to the compile error (a full-page shot would reset the job cards' scrolling).
    await page.screenshot({ path: path.join(screenshots, 'build-board.png') });
    await page.close();
  });

  it('shows the failed build and its error, and offers no retry while read-only', async () => {
    const page = await openBoard(board(`queue/${BUILD_QUEUE}?status=failed`));
    await page.getByText(brokenId, { exact: true }).waitFor();
    await page.getByText(`building ${broken.namespace}/${broken.name} from source ${digest('c')}`).waitFor();
    await mkdir(screenshots, { recursive: true });
    await page.screenshot({ path: path.join(screenshots, 'build-board-failed.png'), fullPage: true });
    expect(await page.getByRole('button', { name: /retry/i }).count()).toBe(0);
    expect(await page.getByTitle(/retry/i).count()).toBe(0);
    await page.close();
  });

  it('refuses retrying through its API while read-only', async () => {
    const response = await fetch(board(`api/queues/${BUILD_QUEUE}/${encodeURIComponent(brokenId)}/retry`), { method: 'PUT' });
    expect(response.status).toBe(405);
    expect(await (await queue.getJob(brokenId))!.getState()).toBe('failed');
  });

  it("needs no Redis command beyond the builder's rule but CLIENT LIST (the workers list, which it does without)", async () => {
    // Redis logs every command its ACL refused; bull-board catches the refusal of getWorkers.
    const refused = (await connection.call('ACL', 'LOG')) as unknown[][];
    const commands = refused.map((entry) => String(entry[entry.indexOf('object') + 1]));
    expect(new Set(commands.filter((command) => command !== 'client|list'))).toEqual(new Set());
  });
});

describe('the build board with BUILD_BOARD_ACTIONS=true', () => {
  let actionsPort: number;
  beforeAll(async () => {
    actionsPort = await freePort();
    started.push(await startPlatformService('builder', { ...builderEnv(), ADMIN_PORT: String(actionsPort), BUILD_BOARD_ACTIONS: 'true' }, { logDir: dir, name: 'builder-actions' }));
  }, 60_000);

  it('offers retry for the failed build', async () => {
    const page = await openBoard(`http://127.0.0.1:${actionsPort}/builds/queue/${BUILD_QUEUE}?status=failed`);
    await page.getByText(brokenId, { exact: true }).waitFor();
    await page.getByRole('button', { name: /retry/i }).first().waitFor();
    await page.close();
  });

  it('still refuses what belongs to api-controller: adding jobs, emptying the queue', async () => {
    const base = `http://127.0.0.1:${actionsPort}/builds/api/queues/${BUILD_QUEUE}`;
    const add = await fetch(`${base}/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'build', data: {} }) });
    expect(add.status).toBe(405);
    expect((await fetch(`${base}/empty`, { method: 'PUT' })).status).toBe(405);
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });
});
