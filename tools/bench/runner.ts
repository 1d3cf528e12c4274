// Runner benchmark, one run, everything on 127.0.0.1, stops by itself:
//   A  plain node:http hello world in a process of its own (the baseline, measured in the same run)
//   B  the same handler as a lambda, through the runner, warm (the runner as its image ships it:
//      bundled, with its workers running the bundled worker host)
//   C  cold starts: the first request to each of N newly published lambdas, once with the
//      runner's worker pool full before each (isolated), once back to back (burst)
//   D  the floor for B on this machine: node:http handing each request to a second process that
//      answers with a ready-made reply (floor.ts), and the same with a web Request built and a
//      Response read in the second process, as a lambda's handler shape requires
//   E  freezing: single requests to a warm lambda, each after its worker was stopped for being
//      idle (SIGSTOP, continued by the request), against single requests back to back
//   F  B again while a neighbour lambda that spins the CPU after answering is called every 250 ms
// Prints req/s and latency percentiles, B/A, D/A, C's p50/p90, E's thaw cost and F's p99 against B's.
//   npm run bench [-- --connections 50 --seconds 10 --cold 30]
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { createS3ArtifactStore } from '@kublambda/artifact-store';
import { freePort, startPlatformService, startRedis, startS3 } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, publishRoute, type RouteRecord } from '@kublambda/route-table';

const { values } = parseArgs({
  options: { connections: { type: 'string', default: '50' }, seconds: { type: 'string', default: '10' }, cold: { type: 'string', default: '30' } },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const coldCount = Number(values.cold);

interface LoadResult {
  requestsPerSecond: number;
  /** CPU time the measured processes spent per request, in microseconds. */
  cpuMicrosPerRequest: number;
  /** The part of it spent in the server's own process (the runner without its workers). */
  ownCpuMicrosPerRequest: number;
  /** CPU time of the load generator (this process) per request. */
  loadCpuMicrosPerRequest: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
}

/** A user and a system CPU time field of /proc/PID/stat (counted from after the name), summed, in clock ticks. */
function statTicks(pid: number, userField: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[userField]) + Number(fields[userField + 1]);
  } catch {
    // The process ended meanwhile.
    return 0;
  }
}

/** User plus system CPU time of the process alone (utime, stime), in clock ticks. */
const cpuTicksOf = (pid: number) => statTicks(pid, 11);

/** User plus system CPU time of the process and all its descendants, live or ended, in clock ticks. */
function cpuTicksOfTree(pid: number): number {
  // cutime and cstime: the children it has waited for (workers that ended meanwhile).
  let ticks = cpuTicksOf(pid) + statTicks(pid, 13);
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children ? children.split(' ') : []) ticks += cpuTicksOfTree(Number(child));
    }
  } catch {
    // The process ended meanwhile.
  }
  return ticks;
}

const TICK_MICROS = 1_000_000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

async function load(url: string, serverPid: number): Promise<LoadResult> {
  // Warm-up first, then the measured run; no pipelining.
  await autocannon({ url, connections, duration: 2, pipelining: 1 });
  const ticksBefore = cpuTicksOfTree(serverPid);
  const ownTicksBefore = cpuTicksOf(serverPid);
  const loadBefore = process.cpuUsage();
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  const loadCpu = process.cpuUsage(loadBefore);
  const ticks = cpuTicksOfTree(serverPid) - ticksBefore;
  const ownTicks = cpuTicksOf(serverPid) - ownTicksBefore;
  return {
    requestsPerSecond: result.requests.average,
    cpuMicrosPerRequest: (ticks * TICK_MICROS) / result.requests.total,
    ownCpuMicrosPerRequest: (ownTicks * TICK_MICROS) / result.requests.total,
    loadCpuMicrosPerRequest: (loadCpu.user + loadCpu.system) / result.requests.total,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const handlerSource = 'export default async () => new Response("hello world")';

/** Starts a server process that prints a line once it listens. */
async function startServer(args: string[]): Promise<{ pid: number; stop(): void }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await Promise.race([
    once(child.stdout, 'data'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`${args.join(' ')} exited with code ${code} before listening`))),
  ]);
  return { pid: child.pid!, stop: () => void child.kill() };
}

/** The baseline runs in a process of its own, like the runner, not beside the load generator. */
function startBaseline(port: number) {
  return startServer(['-e', `require('node:http').createServer((_q, s) => s.end('hello world')).listen(${port}, '127.0.0.1', () => console.log('listening'))`]);
}

async function loadFloor(mode: 'fixed' | 'fetch'): Promise<LoadResult> {
  const port = await freePort();
  const floor = started(await startServer([path.join(import.meta.dirname, 'floor.ts'), 'serve', String(port), mode]));
  try {
    return await load(`http://127.0.0.1:${port}/`, floor.pid);
  } finally {
    floor.stop();
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-bench-'));
// Everything started is stopped at the end, also when a later start fails.
const stops: Array<() => Promise<void> | void> = [() => rm(dir, { recursive: true, force: true })];
const started = <T extends { stop(): Promise<void> | void }>(thing: T): T => (stops.push(() => thing.stop()), thing);
let store!: ReturnType<typeof createS3ArtifactStore>;
let client!: Redis;
let runnerUrl = '';

async function publish(name: string, source: string): Promise<void> {
  const route: RouteRecord = {
    key: `bench/${name}`, namespace: 'bench', name, pathPrefix: `/${name}`, artifact: await store.put(Buffer.from(source)),
    runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 1000, cpuMillis: 10_000, network: 'outbound', stateTables: [], env: [], generation: 1,
  };
  await publishRoute(client, route);
}

async function waitForFullPool(): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const metrics = await (await fetch(`${runnerUrl}/metrics`)).text();
    if (/^kublambda_runner_pooled_workers 2$/m.test(metrics)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the runner never refilled its worker pool');
}

async function waitForRoute(url: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const response = await fetch(url, { method: 'HEAD' }).catch(() => undefined);
    if (response && response.status !== 404) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${url} never got a route`);
}

try {
  const redis = started(await startRedis());
  const s3 = started(await startS3({ bucket: 'assets' }));
  // Publishes routes as api-controller does.
  client = new Redis(redis.urlFor('api-controller'));
  stops.push(() => client.disconnect());
  store = createS3ArtifactStore({ client: s3.client(), bucket: 'assets' });
  execFileSync(process.execPath, [path.join(import.meta.dirname, '../build/bundle-app.ts')], { cwd: path.join(import.meta.dirname, '../../apps/runner'), stdio: 'inherit' });
  const runnerPort = await freePort();
  const runner = started(
    await startPlatformService(
      'runner',
      {
        REDIS_URL: redis.urlFor('runner'), ARTIFACT_STORE_URL: 's3://assets/', S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey,
        HOST: '127.0.0.1', PORT: String(runnerPort), ASSET_CACHE_DIR: path.join(dir, 'cache'), ENV_ENCRYPTION_KEYS: generateEnvEncryptionKey('bench'),
      },
      { logDir: dir, bundled: true },
    ),
  );
  runnerUrl = `http://127.0.0.1:${runnerPort}`;
  const baselinePort = await freePort();
  const baseline = started(await startBaseline(baselinePort));
  const a = await load(`http://127.0.0.1:${baselinePort}/`, baseline.pid);
  baseline.stop();
  const floorFixed = await loadFloor('fixed');
  const floorFetch = await loadFloor('fetch');

  await publish('hello', handlerSource);
  await waitForRoute(`${runnerUrl}/hello`);
  const b = await load(`${runnerUrl}/hello`, runner.pid);

  // Each cold lambda has its own source (so its own asset): the first request pays for
  // fetching the asset (unless the runner prefetched it when the route was announced),
  // taking a pooled worker and loading the bundle.
  let coldIndex = 0;
  async function coldStart(): Promise<number> {
    const name = `cold-${coldIndex++}`;
    await publish(name, `${handlerSource}; // ${name}`);
    // A 404 answer means the route is not there yet; it does not start a worker.
    for (;;) {
      const started = performance.now();
      const response = await fetch(`${runnerUrl}/${name}`);
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - started;
      if (response.status !== 404) throw new Error(`cold lambda ${name} answered ${response.status}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  // Isolated: each new lambda arrives when the runner's pool of pre-spawned workers is full.
  const isolated: number[] = [];
  for (let i = 0; i < coldCount; i++) {
    await waitForFullPool();
    isolated.push(await coldStart());
  }
  // Burst: new lambdas back to back, faster than the pool refills.
  const burst: number[] = [];
  for (let i = 0; i < coldCount; i++) burst.push(await coldStart());

  // E: the worker's state is in /proc/<pid>/stat ("T" while stopped).
  await publish('whoami', 'export default () => Response.json({ pid: process.pid })');
  await waitForRoute(`${runnerUrl}/whoami`);
  const timedCall = async (): Promise<{ ms: number; pid: number }> => {
    const started = performance.now();
    const { pid } = (await (await fetch(`${runnerUrl}/whoami`)).json()) as { pid: number };
    return { ms: performance.now() - started, pid };
  };
  const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ')[0];
  const { pid: whoamiPid } = await timedCall();
  const backToBack: number[] = [];
  const thawed: number[] = [];
  for (let i = 0; i < coldCount; i++) backToBack.push((await timedCall()).ms);
  for (let i = 0; i < coldCount; i++) {
    for (let attempt = 0; processState(whoamiPid) !== 'T'; attempt++) {
      if (attempt > 500) throw new Error('the idle worker was never stopped');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    thawed.push((await timedCall()).ms);
  }

  // F: each call to the neighbour leaves it spinning until it is stopped for being idle.
  await publish('spinner', `let spinning = false;
export default () => {
  if (!spinning) { spinning = true; setInterval(() => { const until = Date.now() + 50; while (Date.now() < until); }, 0); }
  return new Response('spinning');
};`);
  await waitForRoute(`${runnerUrl}/spinner`);
  const neighbourCalls = setInterval(() => void fetch(`${runnerUrl}/spinner`).then((response) => response.arrayBuffer()).catch(() => undefined), 250);
  let f: LoadResult;
  try {
    f = await load(`${runnerUrl}/hello`, runner.pid);
  } finally {
    clearInterval(neighbourCalls);
  }

  const row = (name: string, r: LoadResult) =>
    `${name.padEnd(32)} ${r.requestsPerSecond.toFixed(0).padStart(8)} req/s   p50 ${r.p50} ms   p90 ${r.p90} ms   p99 ${r.p99} ms   errors ${r.errors}   ` +
    `server CPU ${r.cpuMicrosPerRequest.toFixed(1)} µs/request (${r.ownCpuMicrosPerRequest.toFixed(1)} in its own process)   ` +
    `load generator CPU ${r.loadCpuMicrosPerRequest.toFixed(1)} µs/request`;
  console.log(`\nconnections ${connections}, ${seconds} s per run after a 2 s warm-up, no pipelining, 127.0.0.1`);
  console.log(row('A plain node:http', a));
  console.log(row('B lambda through the runner', b));
  console.log(`B/A throughput ratio: ${(b.requestsPerSecond / a.requestsPerSecond).toFixed(2)} (target >= 0.5)`);
  console.log(`B/A server CPU per request: ${(b.cpuMicrosPerRequest / a.cpuMicrosPerRequest).toFixed(2)} (the runner and its workers against the plain server)`);
  console.log(row('D floor, fixed answer', floorFixed));
  console.log(row('D floor, web Request/Response', floorFetch));
  console.log(
    `D/A throughput ratio: ${(floorFixed.requestsPerSecond / a.requestsPerSecond).toFixed(2)} with a fixed answer, ` +
      `${(floorFetch.requestsPerSecond / a.requestsPerSecond).toFixed(2)} with web Request/Response (the most any runner handing requests to another process reaches here)`,
  );
  const coldRow = (name: string, latencies: number[]) => {
    const sorted = latencies.toSorted((x, y) => x - y);
    return `${name.padEnd(32)} n=${sorted.length}   p50 ${percentile(sorted, 50).toFixed(1)} ms   p90 ${percentile(sorted, 90).toFixed(1)} ms   max ${sorted.at(-1)!.toFixed(1)} ms`;
  };
  console.log(`${coldRow('C cold start, isolated', isolated)}   (target p50 <= 25 ms)`);
  console.log(coldRow('C cold start, burst', burst));
  console.log(coldRow('E warm, back to back', backToBack));
  console.log(coldRow('E warm, after being stopped', thawed));
  const median = (latencies: number[]) => percentile(latencies.toSorted((x, y) => x - y), 50);
  console.log(`E thaw cost at p50: ${(median(thawed) - median(backToBack)).toFixed(2)} ms`);
  console.log(row('F B beside a spinning neighbour', f));
  console.log(`F/B p99: ${f.p99} ms against ${b.p99} ms; throughput ${(f.requestsPerSecond / b.requestsPerSecond).toFixed(2)}`);
} finally {
  for (const stop of stops.reverse()) await stop();
}
