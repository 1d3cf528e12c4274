// The runner as its image runs it: the bundle in dist/apps/runner started from / with nothing but
// its configuration, against real Redis and S3. Its workers run the bundled worker-host.mjs under
// Node's permission model, which lets them read that one file and their private directory.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { createS3ArtifactStore } from '@kublambda/artifact-store';
import { startRedis, startS3, type RedisServer, type S3Server } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, publishRoute } from '@kublambda/route-table';

const root = path.resolve(import.meta.dirname, '../..');
const bundleDir = path.join(root, 'dist/apps/runner');
const node = process.execPath;

let redis: RedisServer;
let s3: S3Server;
let client: Redis;
let dir: string;
let runner: ChildProcess | undefined;
/** The runner's stdout and stderr, shown when it fails to start. */
const runnerOutput: string[] = [];
let base: string;

// Answers with what the permission model lets it read: the host script, and not the runner.
const lambdaSource = `export default async () => Response.json({
  greeting: 'bundled',
  mayReadHost: process.permission.has('fs.read', ${JSON.stringify(path.join(bundleDir, 'worker-host.mjs'))}),
  mayReadRunner: process.permission.has('fs.read', ${JSON.stringify(path.join(bundleDir, 'main.mjs'))}),
});`;

/** Starts the bundled runner and resolves with the port it listens on, once it does. */
function startBundledRunner(env: Record<string, string>): Promise<number> {
  const child = spawn(node, [path.join(bundleDir, 'main.mjs')], { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
  runner = child;
  return new Promise((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        runnerOutput.push(line);
        if (line.includes('"message":"listening"')) resolve((JSON.parse(line) as { port: number }).port);
      });
    }
    child.once('exit', (code, signal) => reject(new Error(`the bundled runner exited (code ${code}, signal ${signal}) before listening:\n${runnerOutput.join('\n')}`)));
  });
}

async function stopRunner(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  // It lets its workers finish within their grace; past that it is stuck.
  const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(kill);
}

beforeAll(async () => {
  const bundled = await execa(node, [path.join(root, 'tools/build/bundle-app.ts')], { cwd: path.join(root, 'apps/runner') });
  expect(bundled.stdout).toBe('bundled apps/runner -> dist/apps/runner/main.mjs, dist/apps/runner/worker-host.mjs');
  dir = await mkdtemp(path.join(os.tmpdir(), 'runner-bundle-test-'));
  redis = await startRedis();
  s3 = await startS3({ bucket: 'assets' });
  // Publishes routes as api-controller does.
  client = new Redis(redis.urlFor('api-controller'));
  const artifact = await createS3ArtifactStore({ client: s3.client(), bucket: 'assets' }).put(Buffer.from(lambdaSource));
  await publishRoute(client, {
    key: 'test/bundled', namespace: 'test', name: 'bundled', pathPrefix: '/bundled', artifact, runtime: 'nodejs',
    timeoutSeconds: 10, memoryMiB: 128, concurrency: 10, cpuMillis: 10_000, network: 'outbound', stateTables: [], env: [], generation: 1,
  });
  // PORT 0: the runner logs the port it got, so no other test can take it in between.
  const port = await startBundledRunner({
    REDIS_URL: redis.urlFor('runner'), ARTIFACT_STORE_URL: 's3://assets/', S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey,
    HOST: '127.0.0.1', PORT: '0', ASSET_CACHE_DIR: path.join(dir, 'cache'), ENV_ENCRYPTION_KEYS: generateEnvEncryptionKey('test'),
  });
  base = `http://127.0.0.1:${port}`;
}, 120_000);

afterAll(async () => {
  if (runner) await stopRunner(runner);
  client?.disconnect();
  await Promise.all([redis?.stop(), s3?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('the bundled runner', () => {
  it('serves a lambda from a worker that runs the bundled worker host under the permission model', async () => {
    const response = await fetch(`${base}/bundled`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ greeting: 'bundled', mayReadHost: true, mayReadRunner: false });
  });
});
