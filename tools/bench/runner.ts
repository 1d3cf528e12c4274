// Runner benchmark, one run, everything on 127.0.0.1, stops by itself:
//   A  plain node:http hello world in a process of its own (the baseline, measured in the same run)
//   Q  Knative's queue-proxy (built by tools/queue-proxy/build.sh) in front of the same process as A,
//      configured as Knative configures it by default; the data plane to compare the runner with
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
// Prints req/s and latency percentiles, B/A, D/A, C's p50/p90, E's thaw cost and F's p99 against B's,
// and whether the goals against Knative are met: B/Q throughput, B's p99 against Q's, B against
// its floor D, and C's p50s.
// Queue-proxy binds fixed ports whatever it is told (8022, 9090, 9091), so one runs at a time.
//   npm run bench [-- --connections 50 --seconds 10 --cold 30 --container-concurrency 0]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { createS3ArtifactStore } from '@kublambda/artifact-store';
import { freePort, startPlatformService, startRedis, startS3 } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, publishRoute, type RouteRecord } from '@kublambda/route-table';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    cold: { type: 'string', default: '30' },
    // Knative's default: no limit on requests in flight to the user container.
    'container-concurrency': { type: 'string', default: '0' },
  },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const coldCount = Number(values.cold);
const containerConcurrency = Number(values['container-concurrency']);

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

/**
 * Loads url and measures the CPU time of the server process's tree and of the trees of other
 * processes that serve it (Q's user process beside queue-proxy); "own" is the server's process alone.
 */
async function load(url: string, serverPid: number, ...otherPids: number[]): Promise<LoadResult> {
  const serverTicks = () => [serverPid, ...otherPids].reduce((sum, pid) => sum + cpuTicksOfTree(pid), 0);
  // Warm-up first, then the measured run; no pipelining.
  await autocannon({ url, connections, duration: 2, pipelining: 1 });
  const ticksBefore = serverTicks();
  const ownTicksBefore = cpuTicksOf(serverPid);
  const loadBefore = process.cpuUsage();
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  const loadCpu = process.cpuUsage(loadBefore);
  const ticks = serverTicks() - ticksBefore;
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

// Knative's queue-proxy listens on these whatever its env says (on every address): the admin
// server (8022), the autoscaler's metrics (9090) and, with the request metrics on as by default,
// the Prometheus exporter (9091). 8008 (profiling) is only bound with ENABLE_PROFILING.
const queueProxyFixedPorts = [8022, 9090, 9091];

/** Whether the port can be bound on every address, as queue-proxy binds it. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

async function assertQueueProxyPortsFree(): Promise<void> {
  const taken: number[] = [];
  for (const port of queueProxyFixedPorts) if (!(await portIsFree(port))) taken.push(port);
  if (taken.length > 0) {
    throw new Error(
      `port${taken.length > 1 ? 's' : ''} ${taken.join(', ')} taken: Knative's queue-proxy binds ${queueProxyFixedPorts.join(', ')} whatever it is told, ` +
        'so the benchmark runs it only while those are free (is another benchmark or queue-proxy running?)',
    );
  }
}

/** Builds queue-proxy unless its cached binary is current (tools/queue-proxy/build.sh), and returns its path. */
function buildQueueProxy(): { binary: string; buildSeconds: number } {
  const startedAt = performance.now();
  const binary = execFileSync(path.join(import.meta.dirname, '../queue-proxy/build.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return { binary, buildSeconds: (performance.now() - startedAt) / 1000 };
}

/** Queue-proxy's env as Knative's revision reconciler writes it with the default config maps. */
function queueProxyEnv(servingPort: number, tlsPort: number, userPort: number): Record<string, string> {
  return {
    SERVING_NAMESPACE: 'bench',
    SERVING_SERVICE: 'hello',
    SERVING_CONFIGURATION: 'hello',
    SERVING_REVISION: 'hello-00001',
    SERVING_POD: 'hello-00001-deployment-0',
    SERVING_POD_IP: '127.0.0.1',
    QUEUE_SERVING_PORT: String(servingPort),
    // Only served when certificates are mounted (/var/lib/knative/certs); they are not here.
    QUEUE_SERVING_TLS_PORT: String(tlsPort),
    USER_PORT: String(userPort),
    CONTAINER_CONCURRENCY: String(containerConcurrency),
    // The lambda's timeoutSeconds in B.
    REVISION_TIMEOUT_SECONDS: '30',
    REVISION_RESPONSE_START_TIMEOUT_SECONDS: '0',
    REVISION_IDLE_TIMEOUT_SECONDS: '0',
    // Empty: knative.dev/pkg's default production logger (JSON, info) on stdout, which goes to a file.
    SERVING_LOGGING_CONFIG: '',
    SERVING_LOGGING_LEVEL: '',
    SERVING_ENABLE_REQUEST_LOG: 'false',
    SERVING_ENABLE_PROBE_REQUEST_LOG: 'false',
    SERVING_REQUEST_LOG_TEMPLATE: '',
    SERVING_REQUEST_METRICS_BACKEND: 'prometheus',
    SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS: '5',
    METRICS_COLLECTOR_ADDRESS: '',
    METRICS_DOMAIN: 'knative.dev/internal/serving',
    SYSTEM_NAMESPACE: 'knative-serving',
    TRACING_CONFIG_BACKEND: 'none',
    TRACING_CONFIG_ZIPKIN_ENDPOINT: '',
    TRACING_CONFIG_DEBUG: 'false',
    TRACING_CONFIG_SAMPLE_RATE: '0.1',
    // Knative's default readiness check of a container without a probe: TCP to the user port.
    SERVING_READINESS_PROBE: JSON.stringify({ tcpSocket: { port: userPort, host: '127.0.0.1' }, successThreshold: 1 }),
    ENABLE_PROFILING: 'false',
    ENABLE_HTTP2_AUTO_DETECTION: 'false',
    ENABLE_HTTP_FULL_DUPLEX: 'false',
    ENABLE_MULTI_CONTAINER_PROBES: 'false',
    HOST_IP: '127.0.0.1',
    ROOT_CA: '',
  };
}

/** Resolves once the child exited; at once if it already has. */
function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
}

/**
 * Starts queue-proxy in front of 127.0.0.1:userPort and waits until it answers its readiness probe
 * as the kubelet sends it (a kube-probe/ user agent and K-Network-Probe: queue; other requests are
 * proxied) with 200 "queue", which it does once its own check reaches the user port.
 */
async function startQueueProxy(binary: string, userPort: number): Promise<{ pid: number; port: number; stop(): Promise<void> }> {
  await assertQueueProxyPortsFree();
  const port = await freePort();
  const logFile = path.join(dir, 'queue-proxy.log');
  const log = openSync(logFile, 'a');
  const child = spawn(binary, [], { env: { ...queueProxyEnv(port, await freePort(), userPort), PATH: process.env.PATH ?? '' }, stdio: ['ignore', log, log] });
  // SIGKILL: on SIGTERM queue-proxy drains for 30 s before it exits, as in a pod.
  const stop = async () => {
    child.kill('SIGKILL');
    await exited(child);
  };
  let exitedEarly = false;
  void exited(child).then(() => (exitedEarly = true));
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (exitedEarly) throw new Error(`queue-proxy exited with code ${child.exitCode} before it was ready:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'user-agent': 'kube-probe/1.37', 'k-network-probe': 'queue' } }).catch(() => undefined);
    if (response?.status === 200 && (await response.text()) === 'queue') return { pid: child.pid!, port, stop };
    await response?.arrayBuffer();
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`queue-proxy did not answer its probe within 10 s:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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
  // Before anything starts: a build takes a minute or two the first time, and taken ports fail the run.
  const queueProxy = buildQueueProxy();
  await assertQueueProxyPortsFree();
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
  // Q: the same process as A behind queue-proxy, each started for this row and stopped after it.
  const userPort = await freePort();
  const user = started(await startBaseline(userPort));
  const proxy = started(await startQueueProxy(queueProxy.binary, userPort));
  const q = await load(`http://127.0.0.1:${proxy.port}/`, proxy.pid, user.pid);
  await proxy.stop();
  user.stop();
  // B right after Q and before its floor, so that what else runs on the machine changes as little
  // as possible between the two sides of B/Q and of B/D.
  await publish('hello', handlerSource);
  await waitForRoute(`${runnerUrl}/hello`);
  const b = await load(`${runnerUrl}/hello`, runner.pid);
  const floorFetch = await loadFloor('fetch');
  const floorFixed = await loadFloor('fixed');

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
  console.log(
    `Q: queue-proxy ${queueProxy.binary}${queueProxy.buildSeconds > 5 ? ` (built in ${queueProxy.buildSeconds.toFixed(0)} s)` : ''}, ` +
      `CONTAINER_CONCURRENCY=${containerConcurrency}${containerConcurrency === 0 ? ' (unlimited, Knative\'s default)' : ''}, ` +
      'request metrics on Prometheus, no tracing, no request log; its CPU is queue-proxy and the node:http process together',
  );
  console.log(row('A plain node:http', a));
  console.log(row('Q Knative queue-proxy + node:http', q));
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
  console.log(coldRow('C cold start, isolated', isolated));
  console.log(coldRow('C cold start, burst', burst));
  console.log(coldRow('E warm, back to back', backToBack));
  console.log(coldRow('E warm, after being stopped', thawed));
  const median = (latencies: number[]) => percentile(latencies.toSorted((x, y) => x - y), 50);
  console.log(`E thaw cost at p50: ${(median(thawed) - median(backToBack)).toFixed(2)} ms`);
  console.log(row('F B beside a spinning neighbour', f));
  console.log(`F/B p99: ${f.p99} ms against ${b.p99} ms; throughput ${(f.requestsPerSecond / b.requestsPerSecond).toFixed(2)}`);

  const goal = (name: string, value: string, met: boolean, target: string) => console.log(`${name.padEnd(44)} ${value.padStart(9)}   goal ${target.padEnd(12)} ${met ? 'met' : 'not met'}`);
  const bq = b.requestsPerSecond / q.requestsPerSecond;
  const bd = b.requestsPerSecond / floorFetch.requestsPerSecond;
  const coldP50 = (latencies: number[]) => percentile(latencies.toSorted((x, y) => x - y), 50);
  console.log('\ngoals (against Knative\'s queue-proxy, B\'s floor and cold starts)');
  goal('B/Q throughput', bq.toFixed(2), bq >= 2, '>= 2');
  goal('B p99 against Q p99', `${b.p99}/${q.p99} ms`, b.p99 <= q.p99, 'no worse');
  goal('B/D throughput (web Request/Response)', bd.toFixed(2), bd >= 0.9, '>= 0.9');
  goal('C cold start, burst p50', `${coldP50(burst).toFixed(1)} ms`, coldP50(burst) <= 25, '<= 25 ms');
  goal('C cold start, isolated p50', `${coldP50(isolated).toFixed(1)} ms`, coldP50(isolated) <= 5, '<= 5 ms');
} finally {
  for (const stop of stops.reverse()) await stop();
}
