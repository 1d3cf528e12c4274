import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { LambdaWorker, LambdaWorkerOptions } from './lambda-worker.ts';
import { WorkerPool } from './worker-pool.ts';

let assetsDir: string;
const pools: WorkerPool[] = [];
const workers: LambdaWorker[] = [];

beforeAll(async () => {
  assetsDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-pool-test-'));
});
afterEach(async () => {
  await Promise.all([...workers.splice(0).map((worker) => worker.stop()), ...pools.splice(0).map((pool) => pool.stop())]);
});
afterAll(() => rm(assetsDir, { recursive: true, force: true }));

const ENV_REPORT = 'export default (request, context) => Response.json({ processEnv: process.env, contextEnv: context.env });';

async function options(source: string, overrides: Partial<LambdaWorkerOptions> = {}): Promise<LambdaWorkerOptions> {
  const assetPath = path.join(assetsDir, `${randomUUID()}.mjs`);
  await writeFile(assetPath, source);
  return {
    assetPath,
    limits: { memoryMiB: 128, timeoutSeconds: 5, concurrency: 10 },
    env: {},
    lambda: { namespace: 'tests', name: 'pooled' },
    ...overrides,
  };
}

function poolOf(size = 2, spawnEnv: Record<string, string> = {}): WorkerPool {
  const pool = new WorkerPool({ size, spawnEnv });
  pools.push(pool);
  return pool;
}

async function take(pool: WorkerPool, lambda: LambdaWorkerOptions): Promise<LambdaWorker> {
  const worker = await pool.take(lambda);
  workers.push(worker);
  return worker;
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await delay(10);
  }
}

/** The pids of this process's children running the worker host. */
async function workerHostPids(): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).catch(
    (error: { stdout?: string; code?: number }) => {
      // ps exits 1 when it lists nothing.
      if (error.code === 1) return { stdout: error.stdout ?? '' };
      throw error;
    },
  );
  return stdout
    .split('\n')
    .filter((line) => line.includes('worker-host.ts'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

async function json(worker: LambdaWorker): Promise<unknown> {
  const response = await worker.invoke({ requestId: randomUUID(), method: 'GET', url: 'http://lambda.test/', headers: [], body: null, clientAddress: '203.0.113.7' });
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString()) as unknown;
}

describe('WorkerPool', () => {
  it("serves with a pre-spawned worker that has the lambda's env and none of the spawn-time or runner's env", async () => {
    process.env.RUNNER_SECRET = 'runner-only';
    try {
      const pool = poolOf(2, { SPAWN_ONLY: 'spawned-with' });
      await until(() => pool.available === 2);
      const preSpawned = await workerHostPids();
      expect(preSpawned).toHaveLength(2);
      const worker = await take(pool, await options(ENV_REPORT, { env: { LAMBDA_SETTING: 'on', NODE_OPTIONS: '--allow-child-process' } }));
      expect(preSpawned).toContain(worker.pid);
      expect(await json(worker)).toEqual({ processEnv: { LAMBDA_SETTING: 'on' }, contextEnv: { LAMBDA_SETTING: 'on' } });
    } finally {
      delete process.env.RUNNER_SECRET;
    }
  });

  it('refills itself to its size after a take', async () => {
    const pool = poolOf(2);
    await until(() => pool.available === 2);
    const before = await workerHostPids();
    const first = await take(pool, await options(ENV_REPORT));
    const second = await take(pool, await options(ENV_REPORT));
    expect(before).toEqual(expect.arrayContaining([first.pid, second.pid]));
    await until(() => pool.available === 2);
    const idle = (await workerHostPids()).filter((pid) => pid !== first.pid && pid !== second.pid);
    expect(idle).toHaveLength(2);
    expect(idle.some((pid) => before.includes(pid))).toBe(false);
    expect(await json(first)).toEqual({ processEnv: {}, contextEnv: {} });
  });

  it('starts a worker for another memory limit, then keeps a spare for that limit', async () => {
    const pool = poolOf(2);
    await until(() => pool.available === 2);
    const preSpawned = await workerHostPids();
    const bigger = await options(ENV_REPORT, { limits: { memoryMiB: 256, timeoutSeconds: 5, concurrency: 10 } });
    const first = await take(pool, bigger);
    expect(preSpawned).not.toContain(first.pid);
    expect(first.profile.memoryMiB).toBe(256);
    expect(pool.available).toBe(2);
    expect(await json(first)).toEqual({ processEnv: {}, contextEnv: {} });

    // The spare for 256 MiB: one more worker host than the pool's and the first.
    const deadline = Date.now() + 10_000;
    let beforeSecond = await workerHostPids();
    while (beforeSecond.length < preSpawned.length + 2) {
      if (Date.now() > deadline) throw new Error('no spare was spawned for 256 MiB');
      await delay(20);
      beforeSecond = await workerHostPids();
    }
    const second = await take(pool, bigger);
    expect(beforeSecond).toContain(second.pid);
    expect(second.pid).not.toBe(first.pid);
    expect(second.profile.memoryMiB).toBe(256);
    expect(await json(second)).toEqual({ processEnv: {}, contextEnv: {} });
  });

  it('leaves no processes after stop(), also when stopped while spawning', async () => {
    const settled = poolOf(2);
    await until(() => settled.available === 2);
    const spawning = poolOf(3);
    expect((await workerHostPids()).length).toBeGreaterThanOrEqual(2);
    await Promise.all([settled.stop(), spawning.stop()]);
    expect(await workerHostPids()).toEqual([]);
    expect(settled.available).toBe(0);
    // A stopped pool still serves, with workers of their own, and spawns no more.
    const worker = await take(settled, await options(ENV_REPORT));
    expect(await json(worker)).toEqual({ processEnv: {}, contextEnv: {} });
    await worker.stop();
    expect(await workerHostPids()).toEqual([]);
  });
});
