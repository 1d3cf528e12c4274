// Idle workers are stopped. The runner runs as a local process (no kubelet here) against real
// Redis and S3 servers, with a one-second idle time.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { waitUntil } from '@kublambda/dev-servers';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

let runner: RunnerUnderTest;

const pidLambda = `export default async (request) => {
  const hold = Number(new URL(request.url).searchParams.get('hold') ?? '0');
  await new Promise((resolve) => setTimeout(resolve, hold));
  return new Response(String(process.pid));
};`;

async function pidOf(path: string): Promise<string> {
  const response = await fetch(`${runner.base}${path}`);
  expect(response.status).toBe(200);
  return response.text();
}

const idleRetirements = async (name: string) =>
  (await readFile(runner.process.logFile, 'utf8')).split('\n').filter((line) => line.includes('"message":"retired workers"') && line.includes(`"lambda":"${name}"`) && line.includes('"reason":"idle"')).length;

beforeAll(async () => {
  runner = await startRunnerUnderTest({ env: { WORKER_IDLE_SECONDS: '1' } });
  await runner.publish(pidLambda, { namespace: 'idle', name: 'napper', pathPrefix: '/napper' });
  await runner.publish(pidLambda, { namespace: 'idle', name: 'worker', pathPrefix: '/worker' });
});
afterAll(() => runner?.stop());

describe('idle workers', () => {
  it('stops a worker that had no request for the idle time; the next request starts a new one', async () => {
    const first = await pidOf('/napper');
    await waitUntil('the idle worker to be stopped', async () => (await idleRetirements('napper')) === 1, { intervalMs: 100, timeoutMs: 10_000 });
    expect(await pidOf('/napper')).not.toBe(first);
  });

  it('keeps a worker while a request is in flight, however long', async () => {
    const first = await pidOf('/worker');
    // Held three times the idle time.
    const held = pidOf('/worker?hold=3000');
    expect(await held).toBe(first);
    expect(await idleRetirements('worker')).toBe(0);
  });
});
