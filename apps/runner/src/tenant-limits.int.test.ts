// A tenant's code is hostile: these lambdas try to take more than their share, through the
// runner run as a local process (no kubelet here) against real Redis and S3 servers.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from '@kublambda/dev-servers';
import type { RouteRecord } from '@kublambda/route-table';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';
import { parseCpuMillis, parseMemoryStatus } from './worker/process-usage.ts';

let runner: RunnerUnderTest;
let loopbackServer: http.Server;
let loopbackPort: number;

/** How far past its memoryMiB a worker may allocate (lambda-worker.ts MEMORY_HEADROOM_MIB), plus rounding. */
const MEMORY_BOUND_OVER_LIMIT_MIB = 16 + 1;

function deploy(name: string, source: string, settings: Partial<RouteRecord> = {}): Promise<RouteRecord['artifact']> {
  return runner.publish(source, { namespace: 'tenants', name, pathPrefix: `/${name}`, timeoutSeconds: 10, concurrency: 100, ...settings });
}

async function get(path: string): Promise<{ status: number; body: { error?: string; message?: string } & Record<string, unknown> }> {
  const response = await fetch(`${runner.base}${path}`);
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as { error?: string; message?: string } };
}

async function cpuMillisOf(pid: number): Promise<number> {
  return parseCpuMillis(await readFile(`/proc/${pid}/stat`, 'latin1'))!;
}

async function processState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
}

async function residentMiBOf(pid: number): Promise<number> {
  return parseMemoryStatus(await readFile(`/proc/${pid}/status`, 'latin1'))!.residentKiB / 1024;
}

/** Answers with the pid of the worker that served the request. */
const WHOAMI = 'export default () => Response.json({ pid: process.pid });';

/** Tries fetch and net.connect to a loopback server and reports what happened. */
const NETWORK_PROBE = `
import net from 'node:net';
const connect = (port) => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); resolve('connected'); });
  socket.once('error', (error) => resolve(error.code + ': ' + error.message));
});
export default async (request) => {
  const port = Number(new URL(request.url).searchParams.get('port'));
  let fetched;
  try { fetched = await (await fetch('http://127.0.0.1:' + port + '/')).text(); } catch (error) { fetched = error.message + ' / ' + (error.cause?.code ?? ''); }
  return Response.json({ fetched, connected: await connect(port) });
};`;

const HOARDERS = {
  buffers: 'for (;;) hoard.push(Buffer.alloc(1 << 20, 1));',
  'typed-arrays': 'for (;;) hoard.push(new Float64Array(1 << 17).fill(1));',
  'wasm-memory': 'const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); for (;;) { const end = memory.buffer.byteLength; memory.grow(16); new Uint8Array(memory.buffer, end).fill(1); }',
} as const;

/** Hoards memory on /hoard, answers with its pid otherwise. */
function hoarder(loop: string): string {
  return `const hoard = [];
export default (request) => {
  if (new URL(request.url).pathname === '/hoard') { ${loop} }
  return Response.json({ pid: process.pid, hoarded: hoard.length });
};`;
}

beforeAll(async () => {
  loopbackServer = http.createServer((_request, response) => response.end('loopback says hi'));
  await new Promise<void>((resolve) => loopbackServer.listen(0, '127.0.0.1', resolve));
  loopbackPort = (loopbackServer.address() as AddressInfo).port;
  runner = await startRunnerUnderTest({ env: { MAX_WORKERS_PER_LAMBDA: '2' } });
});
afterAll(async () => {
  await runner?.stop();
  await new Promise((resolve) => loopbackServer?.close(resolve));
});

describe('tenant limits', () => {
  it('spec.network none: fetch and net.connect fail with a clear error; with outbound network both work', async () => {
    await deploy('offline', NETWORK_PROBE, { network: 'none' });
    await deploy('online', NETWORK_PROBE, { network: 'outbound' });
    const offline = await get(`/offline?port=${loopbackPort}`);
    expect(offline.status).toBe(200);
    expect(offline.body.fetched).toBe('fetch failed: this lambda has no network access (spec.network: none) / ERR_ACCESS_DENIED');
    expect(offline.body.connected).toMatch(/^ERR_ACCESS_DENIED: /);
    const online = await get(`/online?port=${loopbackPort}`);
    expect(online.body).toEqual({ fetched: 'loopback says hi', connected: 'connected' });
  });

  for (const [kind, loop] of Object.entries(HOARDERS)) {
    it(`stops a lambda allocating ${kind} past its memoryMiB with 503 MemoryLimit, within the bound; the next request is served`, async () => {
      const name = `hoard-${kind}`;
      await deploy(name, hoarder(loop), { memoryMiB: 64 });
      const runnerResidentBefore = await residentMiBOf(runner.process.pid);
      const hoarded = await get(`/${name}/hoard`);
      expect(hoarded.status).toBe(503);
      expect(hoarded.body.error).toBe('MemoryLimit');
      expect(hoarded.body.message).toContain('memory limit of 64 MiB');
      // The worker's own figures, read from /proc by the runner as it stopped the worker.
      const figures = /allocated (\d+) MiB, its resident size peaked at (\d+) MiB/.exec(hoarded.body.message!);
      expect(figures).not.toBeNull();
      expect(Number(figures![1])).toBeLessThanOrEqual(64 + MEMORY_BOUND_OVER_LIMIT_MIB);
      expect(Number(figures![2])).toBeLessThanOrEqual(64 + MEMORY_BOUND_OVER_LIMIT_MIB);
      const next = await get(`/${name}/`);
      expect(next.status).toBe(200);
      expect(next.body.hoarded).toBe(0);
      // The runner's memory is not the lambda's to take (a generous allowance for its own growth).
      expect((await residentMiBOf(runner.process.pid)) - runnerResidentBefore).toBeLessThan(32);
    }, 60_000);
  }

  it('a blocked event loop: the blocked request gets 504, the 50 sent meanwhile never see the dying worker, the next is 200', async () => {
    await deploy('blocker', `export default (request) => {
      if (new URL(request.url).pathname === '/block') { const until = Date.now() + 10_000; while (Date.now() < until); }
      return Response.json('fine');
    };`, { timeoutSeconds: 2 });
    expect(await get('/blocker/')).toMatchObject({ status: 200 });
    const blocked = fetch(`${runner.base}/blocker/block`);
    // Wait for the request to be inside the worker, so the others arrive behind it.
    await waitUntil('the blocking request to be in flight', async () => (await metricValue('kublambda_runner_in_flight_requests')) >= 1, { intervalMs: 10, timeoutMs: 10_000 });
    const others = await Promise.all(Array.from({ length: 50 }, () => fetch(`${runner.base}/blocker/`).then(async (response) => ({ status: response.status, body: await response.text() }))));
    expect((await blocked).status).toBe(504);
    expect(others.filter((other) => other.status !== 200)).toEqual([]);
    expect(await get('/blocker/')).toMatchObject({ status: 200 });
  }, 60_000);

  it('freezes a worker that spins after answering: its CPU time stops growing, its next request is served', async () => {
    await deploy('background-spinner', `let spinning = false;
    export default () => {
      if (!spinning) { spinning = true; setInterval(() => { const until = Date.now() + 50; while (Date.now() < until); }, 0); }
      return Response.json({ pid: process.pid });
    };`);
    await deploy('neighbour', WHOAMI);
    const { pid } = (await get('/background-spinner/')).body as { pid: number };
    await waitUntil('the idle worker to be stopped', async () => (await processState(pid)) === 'T', { intervalMs: 20, timeoutMs: 10_000 });
    const frozenAt = await cpuMillisOf(pid);
    // Another lambda is served while the spinner is stopped, and the spinner gets no CPU meanwhile.
    for (let i = 0; i < 20; i++) expect(await get('/neighbour/')).toMatchObject({ status: 200 });
    expect(await cpuMillisOf(pid)).toBe(frozenAt);
    const again = await get('/background-spinner/');
    expect(again.status).toBe(200);
    expect(again.body.pid).toBe(pid);
  }, 30_000);

  it('stops a request that spins past spec.cpuMillis with 503 CpuLimit; the next request is served', async () => {
    await deploy('cpu-hog', `export default async (request) => {
      if (new URL(request.url).pathname === '/spin') for (;;) { const until = Date.now() + 20; while (Date.now() < until); await new Promise((resolve) => setImmediate(resolve)); }
      return new Response('light');
    };`, { cpuMillis: 300, timeoutSeconds: 20 });
    const started = Date.now();
    const spun = await get('/cpu-hog/spin');
    expect(spun.status).toBe(503);
    expect(spun.body.error).toBe('CpuLimit');
    expect(spun.body.message).toBe('lambda tenants/cpu-hog: the request used more than its CPU budget of 300 ms (spec.cpuMillis)');
    // Well before the 20 s timeout (the budget, not the timeout, stopped it).
    expect(Date.now() - started).toBeLessThan(15_000);
    const light = await fetch(`${runner.base}/cpu-hog/`);
    expect(light.status).toBe(200);
    expect(await light.text()).toBe('light');
  }, 30_000);

  it('counts its workers’ CPU on /metrics, alive and after they exit', async () => {
    // A wall-clock timeout far beyond the CPU budget: on a loaded machine 2 s of CPU can take
    // many more seconds, and the budget, not the timeout, must end the request.
    await deploy('cpu-meter', `export default async (request) => {
      const spinMs = Number(new URL(request.url).searchParams.get('ms') ?? 0);
      // User and system time: on some machines most of a cpuUsage() call is the system's.
      const used = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };
      if (spinMs > 0) { const until = used() + spinMs; while (used() < until); }
      return Response.json({ pid: process.pid });
    };`, { cpuMillis: 2_000, timeoutSeconds: 120 });
    const { pid } = (await get('/cpu-meter/')).body as { pid: number };
    const before = await metricValue('kublambda_runner_cpu_seconds_total');
    const workerBefore = await cpuMillisOf(pid);
    expect(await get('/cpu-meter/?ms=400')).toMatchObject({ status: 200, body: { pid } });
    const workerSpent = (await cpuMillisOf(pid)) - workerBefore;
    expect(workerSpent).toBeGreaterThanOrEqual(390);
    const whileAlive = await metricValue('kublambda_runner_cpu_seconds_total');
    expect(whileAlive - before).toBeGreaterThanOrEqual(workerSpent / 1000 - 0.02);
    // Past its budget the worker is retired: what it used stays counted (the reaped child's time).
    expect(await get('/cpu-meter/?ms=3000')).toMatchObject({ status: 503 });
    await waitUntil('the retired worker to exit', async () => !(await readFile(`/proc/${pid}/stat`, 'latin1').then(() => true, () => false)), { timeoutMs: 20_000 });
    const afterExit = await metricValue('kublambda_runner_cpu_seconds_total');
    expect(afterExit - whileAlive).toBeGreaterThanOrEqual(1.9);
  }, 180_000);

  it('counts the requests waiting for room in kublambda_runner_waiting_requests, and none once they are served', async () => {
    // One request at a time per worker, two workers at most, and as many waiting as they hold:
    // of four sent at once, two wait.
    await deploy('one-at-a-time', 'export default async () => { await new Promise((resolve) => setTimeout(resolve, 1500)); return new Response("done"); };', { concurrency: 1 });
    expect((await fetch(`${runner.base}/one-at-a-time/`)).status).toBe(200);
    const responses = Array.from({ length: 4 }, () => fetch(`${runner.base}/one-at-a-time/`).then(async (response) => ({ status: response.status, body: await response.text() })));
    await waitUntil('two requests to wait', async () => (await metricValue('kublambda_runner_waiting_requests')) === 2, {
      intervalMs: 50,
      timeoutMs: 20_000,
      describe: async () => `waiting ${await metricValue('kublambda_runner_waiting_requests')}, in flight ${await metricValue('kublambda_runner_in_flight_requests')}`,
    });
    expect(await metricValue('kublambda_runner_in_flight_requests')).toBe(4);
    expect(await Promise.all(responses)).toEqual(Array.from({ length: 4 }, () => ({ status: 200, body: 'done' })));
    expect(await metricValue('kublambda_runner_waiting_requests')).toBe(0);
  }, 60_000);
});

async function metricValue(name: string): Promise<number> {
  const text = await (await fetch(`${runner.base}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
