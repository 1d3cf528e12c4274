// Scale benchmark, one run, everything on 127.0.0.1, stops by itself.
// Part A, the runner with many routes (Redis, S3 and runner processes, routes published as
// api-controller publishes them; all routes share one asset, so nothing is built):
//   M  the runner's memory per idle route: a fresh runner with no routes and a fresh runner with
//      --routes routes, each after a request and two full garbage collections (through the V8
//      inspector); RSS from /proc and the V8 heap in use. Goal <= 2 KB per route.
//   R  RouteMatcher's match in this process for 10 to --routes routes of realistic shape
//      (exact hosts, wildcard hosts, any host; nested path prefixes), ns per match; 10k/10.
//   B  throughput of one warm lambda through the runner (autocannon) with 10 routes present and
//      with --routes routes present, in the same run: two runners (each on a Redis of its own)
//      loaded in turn, three rounds each, medians.
//   U  a route change reaching a runner: a route moved to a new path, from the publish to the
//      runner no longer serving the old path (polled back to back), with 10 and with --routes
//      routes present.
// Part B, `kubectl apply` of --lambdas lambdas (HTTP trigger, a small handler of its own each) on
// a control plane of its own (with kwok), api-controller and builder as local processes (built
// from source, as the integration tests run them), from the apply to all Ready (a watch on
// status.conditions). Finds the bound: CPU each process used (control plane included), the
// API server's requests by resource and verb, the builder's build times and CPU profiles of
// api-controller and the builder (--cpu-prof), summarised by function.
//   npm run bench:scale [-- --routes 10000 --lambdas 1000 --part a|b|all
//                           --build-concurrency N --reconcile-concurrency N --node-options='...']
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import YAML from 'yaml';
import { createS3ArtifactStore } from '@kublambda/artifact-store';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from '@kublambda/crd-types';
import { freePort, kubeBinary, startControlPlane, startPlatformService, startRedis, startS3, type ManagedProcess } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, publishRoute, type RouteRecord } from '@kublambda/route-table';
import { RouteMatcher } from '../../apps/runner/src/route-matcher.ts';
import { isReady, startLambdaPlatform } from '../../apps/api-controller/src/lambda-platform.testing.ts';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    lambdas: { type: 'string', default: '1000' },
    part: { type: 'string', default: 'all' },
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    changes: { type: 'string', default: '20' },
    'build-concurrency': { type: 'string' },
    'reconcile-concurrency': { type: 'string' },
    // Added to NODE_OPTIONS of api-controller and the builder, for example an --import that tries a change.
    'node-options': { type: 'string', default: '' },
    // A CPU profile of kube-apiserver over this many seconds from the apply on (0: none); read with go tool pprof when Go is there.
    'apiserver-profile': { type: 'string', default: '30' },
  },
});
const routeCount = Number(values.routes);
const lambdaCount = Number(values.lambdas);
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const changeCount = Number(values.changes);
const parts = values.part === 'all' ? ['a', 'b'] : [values.part!];

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (values: number[]) => {
  const sorted = values.toSorted((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), max: sorted.at(-1)! };
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const thousands = (n: number) => n.toLocaleString('en-US');

const TICK_SECONDS = 1 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** CPU seconds (user + system) of the process and its descendants, live or waited for. */
function cpuSecondsOfTree(pid: number): number {
  let ticks = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime, stime, cutime, cstime
    ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children ? children.split(' ') : []) ticks += cpuSecondsOfTree(Number(child)) / TICK_SECONDS;
    }
  } catch {
    // The process ended meanwhile.
  }
  return ticks * TICK_SECONDS;
}

/** CPU seconds of this process and the children it has waited for (kubectl), not the servers it runs. */
function ownCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * TICK_SECONDS;
}

/** Busy and total CPU time of the whole machine (every process, this benchmark's or not), in clock ticks. */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, n) => sum + n, 0);
  // idle and iowait
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** How many sockets the process holds open. */
function openSockets(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

// ---------------------------------------------------------------------------------------------
// Routes of realistic shape: teams (namespaces) with lambdas under /<team>/<name>, some on a
// host of their own, some on wildcard hosts, some nested below another lambda's prefix.

const SHARED_DIGEST_PLACEHOLDER = { digest: `sha256:${'0'.repeat(64)}`, size: 1 };

function generatedRoute(i: number, artifact: RouteRecord['artifact']): RouteRecord {
  const namespace = `team-${i % 97}`;
  const name = `fn-${i}`;
  const shape = i % 10;
  // 30% on a host of the team's own, 10% on a wildcard host, 60% on any host; 20% nested under /api/v<n>.
  const host = shape < 3 ? `${namespace}.apps.example.com` : shape === 3 ? `*.${namespace}.tenants.example.com` : undefined;
  const pathPrefix = shape >= 8 ? `/${namespace}/api/v${i % 3}/${name}` : `/${namespace}/${name}`;
  return {
    key: `${namespace}/${name}`, namespace, name, pathPrefix, ...(host ? { host } : {}), artifact,
    runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 1000, cpuMillis: 10_000, network: 'outbound', stateTables: [], env: [], generation: 1,
  };
}

/** A request a client of route i would send: the route's host (a concrete one for a wildcard) and a path below its prefix. */
function requestFor(route: RouteRecord, i: number): { host: string; path: string } {
  const host = !route.host ? 'lambdas.example.com' : route.host.startsWith('*.') ? `customer-${i % 13}${route.host.slice(1)}` : route.host;
  return { host, path: i % 4 === 0 ? route.pathPrefix : `${route.pathPrefix}/orders/${i % 1000}` };
}

interface MatchTime {
  size: number;
  /** Requests go to this many of the routes (all of them, or a few to tell the table's size from the working set). */
  spread: number;
  nsPerMatch: number;
}

function benchMatch(): MatchTime[] {
  const sizes = [10, 100, 1_000, 10_000].filter((n) => n <= Math.max(routeCount, 10));
  const cases = [...sizes.map((size) => [size, size] as const), [sizes.at(-1)!, 10] as const].map(([size, spread]) => {
    const routes = Array.from({ length: size }, (_, i) => generatedRoute(i, SHARED_DIGEST_PLACEHOLDER));
    const matcher = new RouteMatcher();
    matcher.replaceAll(routes);
    // 1,000 requests: to routes spread over the first `spread` routes, and one in ten to no route at all.
    const requests = Array.from({ length: 1_000 }, (_, j) => {
      const i = (j * 7919) % spread;
      return j % 10 === 9 ? { host: 'unknown.example.com', path: `/nobody/${j}/x` } : requestFor(routes[i]!, j);
    });
    return { size, spread, matcher, requests, best: Infinity };
  });
  let matched = 0;
  const rounds = 300;
  // Passes over the cases in turn, the fastest of each kept: the least disturbed by the rest of the machine.
  for (let pass = 0; pass < 16; pass++) {
    for (const table of cases) {
      const started = process.hrtime.bigint();
      for (let r = 0; r < rounds; r++) for (const { host, path } of table.requests) if (table.matcher.match(host, path)) matched++;
      const nsPerMatch = Number(process.hrtime.bigint() - started) / (rounds * table.requests.length);
      // The first pass warms up.
      if (pass > 0) table.best = Math.min(table.best, nsPerMatch);
    }
  }
  if (matched === 0) throw new Error('no request matched a route');
  return cases.map(({ size, spread, best }) => ({ size, spread, nsPerMatch: best }));
}

// ---------------------------------------------------------------------------------------------

interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time of the runner's own process (not its workers) per request, in microseconds. */
  runnerCpuMicros: number;
}

/** User plus system CPU seconds of the process alone. */
function ownCpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_SECONDS;
}

async function load(url: string, runnerPid: number): Promise<LoadResult> {
  await autocannon({ url, connections, duration: 2, pipelining: 1 });
  const cpuBefore = ownCpuSecondsOf(runnerPid);
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  const cpu = ownCpuSecondsOf(runnerPid) - cpuBefore;
  return {
    requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx,
    runnerCpuMicros: (cpu * 1e6) / result.requests.total,
  };
}

/** Garbage collected twice through the inspector, then the process's RSS and V8 heap. */
async function memoryAfterGc(inspectorPort: number, pid: number): Promise<{ rss: number; heapUsed: number }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let nextId = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await sleep(200);
    await call('HeapProfiler.collectGarbage');
    const evaluated = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
    const usage = JSON.parse(evaluated.result.value) as NodeJS.MemoryUsage;
    return { rss: rssBytes(pid), heapUsed: usage.heapUsed };
  } finally {
    socket.close();
  }
}

async function partA(): Promise<string[]> {
  const out: string[] = [];
  const matchTimes = benchMatch();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-bench-scale-'));
  const stops: Array<() => Promise<void> | void> = [() => rm(dir, { recursive: true, force: true })];
  const started = <T extends { stop(): Promise<void> | void }>(thing: T): T => (stops.push(() => thing.stop()), thing);
  try {
    const redis = started(await startRedis());
    const s3 = started(await startS3({ bucket: 'assets' }));
    const client = new Redis(redis.urlFor('api-controller'));
    stops.push(() => client.disconnect());
    const store = createS3ArtifactStore({ client: s3.client(), bucket: 'assets' });
    const artifact = await store.put(Buffer.from('export default async () => new Response("hello world")'));
    execFileSync(process.execPath, [path.join(import.meta.dirname, '../build/bundle-app.ts')], { cwd: path.join(import.meta.dirname, '../../apps/runner'), stdio: 'inherit' });
    const runnerEnv = {
      REDIS_URL: redis.urlFor('runner'), ARTIFACT_STORE_URL: 's3://assets/', S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey,
      HOST: '127.0.0.1', ENV_ENCRYPTION_KEYS: generateEnvEncryptionKey('bench'),
    };
    let serial = 0;
    const startRunner = async (extraEnv: Record<string, string> = {}) => {
      const port = await freePort();
      const name = `runner-${++serial}`;
      const runner = await startPlatformService('runner', { ...runnerEnv, PORT: String(port), ASSET_CACHE_DIR: path.join(dir, `${name}-cache`), ...extraEnv }, { logDir: dir, bundled: true, name });
      return { process: runner, url: `http://127.0.0.1:${port}` };
    };
    /** A fresh runner with the routes Redis holds now (loaded before it listens), measured idle. */
    const measureFreshRunner = async () => {
      const inspectorPort = await freePort();
      const runner = await startRunner({ NODE_OPTIONS: `--inspect=127.0.0.1:${inspectorPort}` });
      try {
        // One request, so the route index is built and the request path has run once.
        await (await fetch(`${runner.url}/nobody/here`)).arrayBuffer();
        await sleep(500);
        return await memoryAfterGc(inspectorPort, runner.process.pid);
      } finally {
        await runner.process.stop();
      }
    };
    const inParallel = async (routes: RouteRecord[], action: (route: RouteRecord) => Promise<void>) => {
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < routes.length) await action(routes[next++]!);
      }));
    };
    const publishAll = (routes: RouteRecord[]) => inParallel(routes, (route) => publishRoute(client, route));
    const waitForFullPool = async (url: string) => {
      for (let attempt = 0; attempt < 500; attempt++) {
        if (/^kublambda_runner_pooled_workers 2$/m.test(await (await fetch(`${url}/metrics`)).text())) return;
        await sleep(20);
      }
      throw new Error('the runner never refilled its worker pool');
    };
    const waitForStatus = async (url: string, wanted: (status: number) => boolean, what: string) => {
      for (let attempt = 0; attempt < 5_000; attempt++) {
        const response = await fetch(url).catch(() => undefined);
        await response?.arrayBuffer();
        if (response && wanted(response.status)) return;
        await sleep(2);
      }
      throw new Error(`${url} never ${what}`);
    };

    const memoryAtZero = await measureFreshRunner();

    const runner = await startRunner();
    stops.push(() => runner.process.stop());
    const hello: RouteRecord = {
      key: 'bench/hello', namespace: 'bench', name: 'hello', pathPrefix: '/hello', artifact,
      runtime: 'nodejs', timeoutSeconds: 30, memoryMiB: 128, concurrency: 1000, cpuMillis: 10_000, network: 'outbound', stateTables: [], env: [], generation: 1,
    };
    const mover: RouteRecord = { ...hello, key: 'bench/mover', name: 'mover', pathPrefix: '/mover-0' };
    const generated = Array.from({ length: routeCount }, (_, i) => generatedRoute(i, artifact));
    // 10 routes: hello, the route that moves in U, and 8 others.
    await publishAll([hello, mover, ...generated.slice(0, 8)]);
    await waitForStatus(`${runner.url}/hello`, (status) => status === 200, 'answered 200');

    /** U: moves the mover route to a new path, each time from the publish to its old path answering 404. */
    let moves = 0;
    const measureRouteChanges = async () => {
      const latencies: number[] = [];
      for (let i = 0; i < changeCount; i++) {
        const oldUrl = `${runner.url}${mover.pathPrefix}`;
        // Its worker warm first: the polls before the change reaches the runner are answered by it.
        await waitForStatus(oldUrl, (status) => status === 200, 'answered 200');
        // And the runner's pool of pre-spawned workers refilled, so no worker starts meanwhile.
        await waitForFullPool(runner.url);
        mover.pathPrefix = `/mover-${++moves}`;
        mover.generation++;
        const publishedAt = performance.now();
        await publishRoute(client, mover);
        for (;;) {
          const response = await fetch(oldUrl);
          await response.arrayBuffer();
          if (response.status === 404) break;
        }
        latencies.push(performance.now() - publishedAt);
      }
      return summary(latencies);
    };

    const u10 = await measureRouteChanges();
    await publishAll(generated.slice(8));
    // Changes are applied one at a time in order: once the last one is served, all are in.
    const lastRoute = generated.findLast((route) => !route.host)!;
    const lastRequest = requestFor(lastRoute, 1);
    await waitForStatus(`${runner.url}${lastRequest.path}`, (status) => status !== 404, 'got its route');
    const tableSize = 2 + routeCount;
    const uMany = await measureRouteChanges();
    const memoryAtMany = await measureFreshRunner();
    // B: a second runner on a Redis of its own, with the first 10 routes only; the two loaded in
    // turn, so other work on the machine falls on both alike; the median of the rounds.
    const fewRedis = started(await startRedis());
    const fewClient = new Redis(fewRedis.urlFor('api-controller'));
    stops.push(() => fewClient.disconnect());
    await inParallel([hello, mover, ...generated.slice(0, 8)], (route) => publishRoute(fewClient, route));
    const fewRunner = await startRunner({ REDIS_URL: fewRedis.urlFor('runner') });
    stops.push(() => fewRunner.process.stop());
    await waitForStatus(`${fewRunner.url}/hello`, (status) => status === 200, 'answered 200');
    const bFew: LoadResult[] = [];
    const bMany: LoadResult[] = [];
    for (let round = 0; round < 3; round++) {
      bFew.push(await load(`${fewRunner.url}/hello`, fewRunner.process.pid));
      bMany.push(await load(`${runner.url}/hello`, runner.process.pid));
    }

    const heapPerRoute = (memoryAtMany.heapUsed - memoryAtZero.heapUsed) / tableSize;
    const rssPerRoute = (memoryAtMany.rss - memoryAtZero.rss) / tableSize;
    const met = (ok: boolean) => (ok ? 'met' : 'not met');
    out.push(`Part A: the runner with many routes (${thousands(tableSize)} routes; connections ${connections}, ${seconds} s per load after a 2 s warm-up)`);
    out.push(`M  fresh runner, idle, after GC:  0 routes: RSS ${mb(memoryAtZero.rss)}, V8 heap ${mb(memoryAtZero.heapUsed)}   ${thousands(tableSize)} routes: RSS ${mb(memoryAtMany.rss)}, V8 heap ${mb(memoryAtMany.heapUsed)}`);
    out.push(`   per idle route: RSS ${kb(rssPerRoute)}, V8 heap ${kb(heapPerRoute)}   (goal <= 2 KB: RSS ${met(rssPerRoute <= 2048)}, heap ${met(heapPerRoute <= 2048)})`);
    const spreadOver = matchTimes.filter(({ size, spread }) => size === spread);
    out.push(`R  RouteMatcher.match, requests spread over all routes, ns per match:  ${spreadOver.map(({ size, nsPerMatch }) => `${thousands(size)} routes ${nsPerMatch.toFixed(0)}`).join('   ')}`);
    const first = spreadOver[0]!;
    const last = spreadOver.at(-1)!;
    const few = matchTimes.at(-1)!;
    out.push(`   ${thousands(last.size)}/${first.size} ratio ${(last.nsPerMatch / first.nsPerMatch).toFixed(2)}  (flat, within 1.5: ${met(last.nsPerMatch / first.nsPerMatch <= 1.5)})`);
    out.push(`   ${thousands(few.size)} routes with the requests to ${few.spread} of them: ${few.nsPerMatch.toFixed(0)} ns, ratio to ${first.size} routes ${(few.nsPerMatch / first.nsPerMatch).toFixed(2)} (the table's size alone; the rest is the requests' working set in the CPU caches)`);
    const median = (results: LoadResult[], of: (r: LoadResult) => number) => results.map(of).toSorted((a, b) => a - b)[Math.floor(results.length / 2)]!;
    const bRow = (label: string, results: LoadResult[]) =>
      `${label.padEnd(40)} ${median(results, (r) => r.requestsPerSecond).toFixed(0).padStart(7)} req/s (rounds ${results.map((r) => r.requestsPerSecond.toFixed(0)).join(', ')})   ` +
      `p99 ${median(results, (r) => r.p99)} ms   errors ${results.reduce((sum, r) => sum + r.errors, 0)}   runner CPU ${median(results, (r) => r.runnerCpuMicros).toFixed(1)} µs/request (its own process)`;
    out.push(bRow('B  one warm lambda, 10 routes present', bFew));
    out.push(bRow(`B  one warm lambda, ${thousands(tableSize)} routes present`, bMany));
    out.push(`   ratio ${thousands(tableSize)} routes / 10 routes (medians of 3 rounds each, two runners loaded in turn): throughput ${(median(bMany, (r) => r.requestsPerSecond) / median(bFew, (r) => r.requestsPerSecond)).toFixed(2)}, runner CPU per request ${(median(bMany, (r) => r.runnerCpuMicros) / median(bFew, (r) => r.runnerCpuMicros)).toFixed(2)}`);
    const uRow = (label: string, u: ReturnType<typeof summary>) => `${label.padEnd(40)} n=${changeCount}   p50 ${u.p50.toFixed(1)} ms   p90 ${u.p90.toFixed(1)} ms   max ${u.max.toFixed(1)} ms`;
    out.push(uRow('U  route change reaches the runner, 10 routes', u10));
    out.push(uRow(`U  route change reaches the runner, ${thousands(tableSize)}`, uMany));
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** The top functions by self time in a .cpuprofile, and the share of each package. */
function summariseProfile(file: string): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
    startTime: number;
    endTime: number;
  };
  const nodeById = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const { functionName, url, lineNumber } = nodeById.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    total += micros;
    const where = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '');
    const label = `${functionName || '(anonymous)'} ${where ? `${path.basename(where)}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(label, (byFunction.get(label) ?? 0) + micros);
    const pkg = !url ? functionName.startsWith('(') ? functionName : '(native)' : url.includes('/node_modules/')
      ? url.split('/node_modules/').at(-1)!.split('/').slice(0, url.split('/node_modules/').at(-1)!.startsWith('@') ? 2 : 1).join('/')
      : url.startsWith('node:') ? 'node: internals' : url.includes('/libs/') ? `libs/${url.split('/libs/')[1]!.split('/')[0]}` : url.includes('/apps/') ? `apps/${url.split('/apps/')[1]!.split('/')[0]}` : url;
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros);
  }
  const wall = (profile.endTime - profile.startTime) / 1e6;
  const top = (map: Map<string, number>, n: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([label, micros]) => `${(micros / 1e6).toFixed(2)} s ${((100 * micros) / total).toFixed(0)}%  ${label}`);
  return [
    `busy ${(total / 1e6).toFixed(1)} s of ${wall.toFixed(1)} s profiled (main thread; idle ${(idle / 1e6).toFixed(1)} s)`,
    'by package:', ...top(byPackage, 8).map((line) => `  ${line}`),
    'by function (self time):', ...top(byFunction, 12).map((line) => `  ${line}`),
  ];
}

/** A counter or a histogram's _sum/_count of the API server, by verb, resource and subresource. */
function apiServerSeries(metrics: string, name: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(' ').at(-1)));
  }
  return counts;
}

async function partB(): Promise<string[]> {
  const out: string[] = [];
  const controlPlane = await startControlPlane({ kwok: true });
  process.env.KUBECONFIG = controlPlane.kubeconfigPath;
  const stops: Array<() => Promise<void>> = [controlPlane.stop];
  const profileDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-bench-scale-profiles-'));
  stops.push(() => rm(profileDir, { recursive: true, force: true }));
  try {
    const platform = await startLambdaPlatform('bench-scale');
    stops.push(platform.stop);
    const builderAdminPort = await freePort();
    const profiling = { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir} ${values['node-options']}`.trim() };
    const builderEnv: Record<string, string> = { ...profiling, ADMIN_PORT: String(builderAdminPort) };
    if (values['build-concurrency']) builderEnv.BUILD_CONCURRENCY = values['build-concurrency'];
    // The platform slice relists every second for its tests; here the controller's default.
    const controllerEnv: Record<string, string> = { ...profiling, RELIST_INTERVAL_MS: '600000' };
    if (values['reconcile-concurrency']) controllerEnv.RECONCILE_CONCURRENCY = values['reconcile-concurrency'];
    const builder = await platform.startBuilder('builder', builderEnv);
    const controller = await platform.startController('api-controller', controllerEnv);
    const processes: ManagedProcess[] = [...controlPlane.processes, builder, controller];

    const kubeConfig = platform.kubeConfig;
    const namespace = platform.namespace;
    const names = Array.from({ length: lambdaCount }, (_, i) => `fn-${String(i).padStart(4, '0')}`);
    const created = new Set<string>();
    const builtAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    let allReady: () => void = () => {};
    const allReadyPromise = new Promise<void>((resolve) => (allReady = resolve));
    const watch = await new k8s.Watch(kubeConfig).watch(`/apis/${LAMBDA_GROUP}/${LAMBDA_VERSION}/namespaces/${namespace}/${LAMBDA_PLURAL}`, {}, (_type, lambda: Lambda) => {
      const name = lambda.metadata.name!;
      const now = performance.now();
      created.add(name);
      if (!builtAt.has(name) && lambda.status?.conditions?.find((c) => c.type === 'Built')?.status === 'True') builtAt.set(name, now);
      if (!readyAt.has(name) && isReady(lambda)) {
        readyAt.set(name, now);
        if (readyAt.size === lambdaCount) allReady();
      }
    }, (error) => {
      if (error && readyAt.size < lambdaCount) console.error('the Lambda watch ended', error);
    });

    const readMetrics = async () => {
      const result = await execa(await kubeBinary('kubectl'), ['--kubeconfig', controlPlane.kubeconfigPath, 'get', '--raw', '/metrics'], { reject: false, maxBuffer: 256 * 1024 * 1024 });
      return {
        requests: apiServerSeries(result.stdout, 'apiserver_request_total'),
        seconds: apiServerSeries(result.stdout, 'apiserver_request_duration_seconds_sum'),
        timed: apiServerSeries(result.stdout, 'apiserver_request_duration_seconds_count'),
      };
    };
    const requestsBefore = await readMetrics();
    const cpuBefore = new Map(processes.map((p) => [p.name, cpuSecondsOfTree(p.pid)]));
    const benchCpuBefore = ownCpuSeconds();

    const manifests = names.map((name, i) => ({
      apiVersion: `${LAMBDA_GROUP}/${LAMBDA_VERSION}`, kind: 'Lambda', metadata: { name, namespace },
      spec: { source: { inline: `export default async (request: Request) => new Response("hello from ${name} (${i})\\n");` }, triggers: { http: { path: `/${name}` } } },
    }));
    const appliedStart = performance.now();
    const apiServerProfileSeconds = Number(values['apiserver-profile']);
    const apiServerProfile = path.join(profileDir, 'kube-apiserver.pprof');
    const apiServerProfiled = apiServerProfileSeconds > 0
      ? execa(await kubeBinary('kubectl'), ['--kubeconfig', controlPlane.kubeconfigPath, 'get', '--raw', `/debug/pprof/profile?seconds=${apiServerProfileSeconds}`], { reject: false, encoding: 'buffer', timeout: (apiServerProfileSeconds + 60) * 1000, maxBuffer: 256 * 1024 * 1024 })
          .then(async (result) => result.exitCode === 0 && (await writeFile(apiServerProfile, result.stdout), true))
      : Promise.resolve(false);
    // A timeline, once a second: the build queue as the builder reports it, Built and Ready so far, cores in use.
    const timeline: string[] = [];
    let lastCpu = processes.reduce((sum, p) => sum + cpuSecondsOfTree(p.pid), 0);
    let lastAt = performance.now();
    let lastMachine = machineTicks();
    const machineBefore = lastMachine;
    const sampler = setInterval(() => {
      void (async () => {
        const text = await (await fetch(`http://127.0.0.1:${builderAdminPort}/metrics`)).text().catch(() => '');
        const depth = (state: string) => text.match(new RegExp(`^kublambda_builder_queue_depth\\{state="${state}"\\} (\\S+)$`, 'm'))?.[1] ?? '?';
        const cpuNow = processes.reduce((sum, p) => sum + cpuSecondsOfTree(p.pid), 0);
        const now = performance.now();
        timeline.push(`${((now - appliedStart) / 1000).toFixed(0).padStart(5)} s   created ${String(created.size).padStart(5)}   builds waiting ${depth('waiting').padStart(5)}  active ${depth('active').padStart(2)}  completed ${depth('completed').padStart(5)}   Built ${String(builtAt.size).padStart(5)}  Ready ${String(readyAt.size).padStart(5)}   ours ${((cpuNow - lastCpu) / ((now - lastAt) / 1000)).toFixed(2)} cores busy   api-controller RSS ${mb(rssBytes(controller.pid))}, open sockets ${openSockets(controller.pid)}`);
        const machine = machineTicks();
        timeline[timeline.length - 1] += `   machine ${((machine.busy - lastMachine.busy) / (machine.total - lastMachine.total) * os.cpus().length).toFixed(2)} cores busy`;
        lastMachine = machine;
        lastCpu = cpuNow;
        lastAt = now;
      })();
    }, 1_000);
    const applied = await execa(await kubeBinary('kubectl'), ['--kubeconfig', controlPlane.kubeconfigPath, 'apply', '-f', '-'], {
      reject: false, input: manifests.map((m) => YAML.stringify(m)).join('---\n'), timeout: 600_000, maxBuffer: 64 * 1024 * 1024,
    });
    if (applied.exitCode !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    const appliedEnd = performance.now();
    const timeout = setTimeout(() => allReady(), 1_800_000);
    await allReadyPromise;
    clearTimeout(timeout);
    clearInterval(sampler);
    const wall = (performance.now() - appliedStart) / 1000;
    watch.abort();

    const cpu = processes.map((p) => ({ name: p.name, seconds: cpuSecondsOfTree(p.pid) - cpuBefore.get(p.name)! }));
    cpu.push({ name: 'kubectl apply and this benchmark (its watch)', seconds: ownCpuSeconds() - benchCpuBefore });
    const requestsAfter = await readMetrics();
    const builderMetrics = await (await fetch(`http://127.0.0.1:${builderAdminPort}/metrics`)).text();
    const metric = (name: string) => Number(builderMetrics.match(new RegExp(`^${name}(?:\\{[^}]*kind="asset"[^}]*\\})? (\\S+)$`, 'm'))?.[1] ?? NaN);

    const since = (at: number) => (at - appliedStart) / 1000;
    const built = [...builtAt.values()].toSorted((a, b) => a - b);
    const ready = [...readyAt.values()].toSorted((a, b) => a - b);
    const lagAfterBuilt = names.filter((n) => builtAt.has(n) && readyAt.has(n)).map((n) => readyAt.get(n)! - builtAt.get(n)!);
    out.push(`Part B: kubectl apply of ${thousands(lambdaCount)} lambdas (HTTP trigger, a handler of its own each) to all Ready, ${os.cpus().length} cores`);
    out.push(`   builder BUILD_CONCURRENCY ${values['build-concurrency'] ?? '2 (default)'}, api-controller RECONCILE_CONCURRENCY ${values['reconcile-concurrency'] ?? '8 (default)'}${values['node-options'] ? `, NODE_OPTIONS += ${values['node-options']}` : ''}`);
    if (ready.length < lambdaCount) out.push(`   only ${ready.length} Ready after 30 minutes`);
    out.push(`   apply to all Ready: ${wall.toFixed(1)} s   (kubectl apply itself ${((appliedEnd - appliedStart) / 1000).toFixed(1)} s)`);
    out.push(`   Built=True: first ${since(built[0]!).toFixed(1)} s, half ${since(percentile(built, 50)).toFixed(1)} s, last ${since(built.at(-1)!).toFixed(1)} s   (${(built.length / (since(built.at(-1)!) - since(built[0]!))).toFixed(1)} builds/s)`);
    out.push(`   Ready=True: first ${since(ready[0]!).toFixed(1)} s, half ${since(percentile(ready, 50)).toFixed(1)} s, last ${since(ready.at(-1)!).toFixed(1)} s`);
    const lag = summary(lagAfterBuilt);
    out.push(`   Built -> Ready per lambda: p50 ${lag.p50.toFixed(0)} ms  p90 ${lag.p90.toFixed(0)} ms  max ${lag.max.toFixed(0)} ms`);
    const buildCount = metric('kublambda_builder_build_duration_seconds_count');
    const buildSum = metric('kublambda_builder_build_duration_seconds_sum');
    out.push(`   builder: ${buildCount} asset builds, ${((buildSum / buildCount) * 1000).toFixed(0)} ms each on average (taking the job to its outcome), ${(buildSum / wall).toFixed(2)} builds in flight on average`);
    out.push(`   CPU seconds over the ${wall.toFixed(0)} s (cores busy = CPU / wall):`);
    for (const { name, seconds } of cpu.toSorted((a, b) => b.seconds - a.seconds)) out.push(`     ${name.padEnd(40)} ${seconds.toFixed(1).padStart(7)} s   ${(seconds / wall).toFixed(2)} cores`);
    const totalCpu = cpu.reduce((sum, { seconds }) => sum + seconds, 0);
    out.push(`     ${'all'.padEnd(40)} ${totalCpu.toFixed(1).padStart(7)} s   ${(totalCpu / wall).toFixed(2)} cores of ${os.cpus().length}`);
    const machineAfter = machineTicks();
    out.push(`     ${'the whole machine (other work included)'.padEnd(40)} ${((machineAfter.busy - machineBefore.busy) * TICK_SECONDS).toFixed(1).padStart(7)} s   ${(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * os.cpus().length).toFixed(2)} cores of ${os.cpus().length}`);
    const delta = (after: Map<string, number>, before: Map<string, number>, key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    const requestDeltas = [...requestsAfter.requests.keys()].map((key) => [key, delta(requestsAfter.requests, requestsBefore.requests, key)] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const meanMs = (key: string) => (1000 * delta(requestsAfter.seconds, requestsBefore.seconds, key)) / delta(requestsAfter.timed, requestsBefore.timed, key);
    const totalRequests = requestDeltas.reduce((sum, [, n]) => sum + n, 0);
    out.push('   timeline (every 1 s, thinned):');
    const step = Math.max(1, Math.ceil(timeline.length / 30));
    for (const [i, line] of timeline.entries()) if (i % step === 0 || i === timeline.length - 1) out.push(`     ${line}`);
    out.push(`   API server requests: ${thousands(totalRequests)} (${(totalRequests / lambdaCount).toFixed(1)} per lambda, ${(totalRequests / wall).toFixed(0)}/s); the largest:`);
    for (const [key, n] of requestDeltas.slice(0, 14)) {
      const mean = meanMs(key);
      out.push(`     ${key.padEnd(44)} ${String(n).padStart(7)}   ${(n / lambdaCount).toFixed(2)} per lambda${Number.isFinite(mean) && !key.startsWith('WATCH') ? `   ${mean.toFixed(1)} ms each in the API server` : ''}`);
    }

    if (await apiServerProfiled) {
      const go = ['/usr/local/go/bin/go', 'go'].find((candidate) => spawnSync(candidate, ['version']).status === 0);
      const top = go && spawnSync(go, ['tool', 'pprof', '-top', '-cum', '-nodecount=3000', apiServerProfile], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      out.push(`   CPU profile of kube-apiserver, the first ${apiServerProfileSeconds} s after the apply began${top && top.status === 0 ? ' (go tool pprof -top -cum; cumulative share of its CPU, by what the time went to):' : `: ${apiServerProfile} (no go tool pprof here)`}`);
      if (top && top.status === 0) {
        const rows = top.stdout.split('\n').map((line) => line.trim().split(/\s+/)).filter((f) => f.length >= 6 && f[4]!.endsWith('%')).map((f) => ({ cum: parseFloat(f[4]!), name: f.slice(5).join(' ') }));
        const total = top.stdout.match(/Total samples = (\S+)/)?.[1];
        out.push(`     ${total} of CPU sampled`);
        const buckets: Array<[string, RegExp]> = [
          ['TLS handshakes', /^crypto\/tls\.\(\*Conn\)\.(HandshakeContext|handshakeContext|serverHandshake)$/],
          ['garbage collection', /^runtime\.gcBgMarkWorker$/],
          ['authentication (client certificates, tokens)', /authentication\/request\/union\.\(\*unionAuthRequestHandler\)\.AuthenticateRequest$/],
          ['admission', /admission\.\(\*reinvoker\)\.Admit$|admission\.chainAdmissionHandler\)\.Admit$|admission\.validatingAdmissionHandler|\(\*chainAdmissionHandler\)\.Validate$/],
          ['CEL (CRD validation rules)', /cel-go|apiextensions-apiserver\/pkg\/apiserver\/schema\/cel/],
          ['server-side apply, managed fields', /structured-merge-diff|fieldmanager/],
          ['watch fan-out', /cacher\.\(\*Cacher\)\.dispatchEvents$|handlers\.\(\*WatchServer\)\.HandleHTTP$/],
          ['etcd client', /go\.etcd\.io\/etcd\/client\/v3/],
          ['JSON encoding and decoding', /^encoding\/json\.|sigs\.k8s\.io\/json|json-iterator/],
        ];
        for (const [label, pattern] of buckets) {
          const hit = rows.filter((row) => pattern.test(row.name)).sort((a, b) => b.cum - a.cum)[0];
          out.push(`     ${label.padEnd(46)} ${hit ? `${hit.cum.toFixed(1).padStart(5)}%   ${hit.name.slice(0, 90)}` : '    -'}`);
        }
      }
    }
    // The profiles are written when the processes exit.
    await controller.stop();
    await builder.stop();
    for (const [label, pid] of [['api-controller', controller.pid], ['builder', builder.pid]] as const) {
      const file = readdirSync(profileDir).find((f) => f.split('.')[3] === String(pid));
      if (!file) {
        out.push(`   (no CPU profile from ${label})`);
        continue;
      }
      out.push(`   CPU profile of ${label}:`);
      for (const line of summariseProfile(path.join(profileDir, file))) out.push(`     ${line}`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
  }
  return out;
}

const report: string[] = [];
try {
  if (parts.includes('a')) report.push(...(await partA()));
  if (parts.includes('b')) report.push(...(await partB()));
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  console.log(`\n${report.join('\n')}`);
}
