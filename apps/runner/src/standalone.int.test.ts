// The standalone runner (a lambda's image, libs/route-table standalone.ts) as a local process from
// source: no kubelet and no image here, so KUBLAMBDA_STANDALONE_LAMBDA points at a temporary
// directory holding lambda.json and lambda.mjs as the image would under /lambda. No S3 and no
// artifact store; a real Redis only for the case that gives it one for state tables.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { digestOf } from '@kublambda/artifact-store';
import { freePort, startPlatformService, startRedis, type ManagedProcess } from '@kublambda/dev-servers';
import type { StandaloneLambda } from '@kublambda/route-table';

// By path: spins past its timeout, calls a state table, or echoes what it sees.
const source = `export default async (request, context) => {
  const url = new URL(request.url);
  if (url.pathname === '/spin') { while (true) {} }
  if (url.pathname === '/state') {
    try {
      return Response.json({ result: await context.state.table('visits').increment('count') });
    } catch (error) {
      return Response.json({ error: { code: error.code, message: error.message } });
    }
  }
  return Response.json({ path: url.pathname, prefix: request.headers.get('x-forwarded-prefix'), env: Object.keys(process.env).sort(), greeting: process.env.GREETING });
};`;

const lambda: StandaloneLambda = {
  namespace: 'shop', name: 'hello', artifact: { digest: digestOf(Buffer.from(source)), size: Buffer.byteLength(source) }, runtime: 'nodejs',
  timeoutSeconds: 2, memoryMiB: 128, concurrency: 10, cpuMillis: 10_000, network: 'outbound', stateTables: ['visits'],
};

const dirs: string[] = [];
const stops: Array<() => Promise<void>> = [];

/** A directory as the image's /lambda: lambda.json and the asset beside it. */
async function lambdaDir(settings: StandaloneLambda, asset = source): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'standalone-runner-test-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'lambda.json'), JSON.stringify(settings));
  await writeFile(path.join(dir, 'lambda.mjs'), asset);
  return dir;
}

async function startStandalone(dir: string, env: Record<string, string> = {}): Promise<{ base: string; process: ManagedProcess }> {
  const port = await freePort();
  const runner = await startPlatformService('runner', { KUBLAMBDA_STANDALONE_LAMBDA: path.join(dir, 'lambda.json'), HOST: '127.0.0.1', PORT: String(port), ...env }, { logDir: dir });
  stops.push(() => runner.stop());
  return { base: `http://127.0.0.1:${port}`, process: runner };
}

let base: string;

beforeAll(async () => {
  ({ base } = await startStandalone(await lambdaDir(lambda), { LAMBDA_ENV_GREETING: 'hi', LAMBDA_ENV_MODE: 'standalone', SECRET_OF_THE_CONTAINER: 'x' }));
}, 60_000);

afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}, 60_000);

describe('the standalone runner', () => {
  it('serves its one lambda on every path, with the LAMBDA_ENV_ variables as its env and nothing else of the container', async () => {
    for (const requestPath of ['/', '/anything/at/all?x=1']) {
      const response = await fetch(`${base}${requestPath}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ path: requestPath.split('?')[0], prefix: '/', env: ['GREETING', 'MODE'], greeting: 'hi' });
    }
  });

  it('answers /healthz, /readyz and /metrics as the pool does', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ready', routes: 1 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/kublambda_lambda_requests_total\{[^}]*namespace="shop"[^}]*lambda="hello"/);
  });

  it('holds the lambda to the timeout of lambda.json, with the pool timeout answer', async () => {
    const response = await fetch(`${base}/spin`);
    expect(response.status).toBe(504);
    expect(await response.json()).toMatchObject({ error: 'Timeout' });
    // A fresh worker serves the next request.
    expect((await fetch(`${base}/`)).status).toBe(200);
  }, 60_000);

  it('fails state-table operations with StateUnavailable when it has no REDIS_URL', async () => {
    expect(await (await fetch(`${base}/state`)).json()).toEqual({
      error: { code: 'StateUnavailable', message: 'the standalone runner has no state store: start it with REDIS_URL to use state tables' },
    });
  });

  it('performs state-table operations in Redis when given REDIS_URL', async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const withRedis = await startStandalone(await lambdaDir(lambda), { REDIS_URL: redis.urlFor('runner') });
    expect(await (await fetch(`${withRedis.base}/state`)).json()).toEqual({ result: 1 });
    expect(await (await fetch(`${withRedis.base}/state`)).json()).toEqual({ result: 2 });
  }, 60_000);

  it('refuses to start when the asset is not the one lambda.json names', async () => {
    const dir = await lambdaDir(lambda, `${source}\n// not the asset lambda.json names`);
    const refused = await startStandalone(dir).then(() => new Error('started'), (error: Error) => error);
    expect(refused.message).toContain('runner exited during start-up (code 1');
    expect(refused.message).toContain('"message":"starting failed"');
    expect(refused.message).toMatch(new RegExp(`lambda\\.mjs: its digest is sha256:[0-9a-f]{64}, but lambda\\.json names artifact\\.digest ${lambda.artifact.digest}`));
  }, 60_000);

  it('refuses to start on an invalid lambda.json, naming the file and the field', async () => {
    const dir = await lambdaDir({ ...lambda, timeoutSeconds: 'soon' } as unknown as StandaloneLambda);
    await expect(startStandalone(dir)).rejects.toThrow(`${path.join(dir, 'lambda.json')}: timeoutSeconds must be a whole number of at least 1, not \\"soon\\"`);
  }, 60_000);
});
