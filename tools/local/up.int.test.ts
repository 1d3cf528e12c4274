// Runs the local all-in-one as a child process, as `npm run up` does, with its own control plane,
// and uses it as a new user would: kubectl, curl (fetch) on the printed URLs, a ConfigMap for the
// watch examples, and the CLI with nothing but the kubeconfig. Then Ctrl-C, a second start on
// the same directory (the state is still there) and `npm run down`. Lambdas' npm dependencies
// come from a registry on loopback (--npm-registry), never the public one.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { kubectl, portAcceptsConnections, rawRedisReplies, startNpmRegistry, waitUntil, type NpmRegistry } from '@kublambda/dev-servers';
import { createReadOnlyStateStore } from '@kublambda/state-tables';
import { ROUTES_KEY } from '@kublambda/route-table';

const EXAMPLES = ['config-audit', 'durations', 'hello', 'todos', 'visits'];
const cliMain = path.resolve(import.meta.dirname, '../../apps/cli/src/main.ts');

const acceptsConnections = (url: string) => {
  const { hostname, port } = new URL(url);
  return portAcceptsConnections(Number(port), hostname);
};

let npmRegistry: NpmRegistry;
let dir: string;
beforeAll(async () => {
  npmRegistry = await startNpmRegistry();
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-up-'));
});
afterAll(async () => {
  await npmRegistry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Up {
  process: ResultPromise<{ reject: false; all: true }>;
  exited(): boolean;
  output: string;
  kubeconfig: string;
  endpoints: Record<'API server' | 'Redis' | 'registry' | 'runner', string>;
}

function runUp(...args: string[]) {
  return execa(process.execPath, [path.resolve(import.meta.dirname, 'up.ts'), '--dir', dir, '--npm-registry', npmRegistry.url, ...args], { reject: false, all: true });
}

/** npm run up, until it says it is up. */
async function startUp(): Promise<Up> {
  const child = runUp();
  let output = '';
  let exited = false;
  void child.then(() => (exited = true));
  await new Promise<void>((resolve, reject) => {
    child.all.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops everything.')) resolve();
    });
    void child.then(() => reject(new Error(`up exited early:\n${output}`)));
  });
  const endpoint = (name: string) => output.match(new RegExp(`^  ${name}\\s+(\\S+)`, 'm'))![1]!;
  return {
    process: child,
    exited: () => exited,
    output,
    kubeconfig: output.match(/export KUBECONFIG=(\S+)/)![1]!,
    endpoints: { 'API server': endpoint('API server'), Redis: endpoint('Redis'), registry: endpoint('registry'), runner: endpoint('runner') },
  };
}

function cli(up: Up, args: string[], options: { cwd?: string } = {}) {
  return execa(process.execPath, [cliMain, ...args], { reject: false, env: { KUBECONFIG: up.kubeconfig, HOME: os.homedir() }, extendEnv: false, cwd: options.cwd });
}

/** Every example Ready; on a timeout the error shows each one's Ready condition. */
async function allReady(kubeconfig: string, timeoutMs: number): Promise<void> {
  let last = '';
  await waitUntil('every example to be Ready', async () => {
    const result = await kubectl(['get', 'lam', '-n', 'default', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}{"\\n"}{end}'], { kubeconfig });
    last = result.stdout + result.stderr;
    // The examples; lambdas the test adds (slow) are not waited for.
    const lines = result.stdout.trim().split('\n').filter((line) => EXAMPLES.includes(line.split('=')[0]!));
    return lines.length === EXAMPLES.length && lines.every((line) => /^\S+=True/.test(line));
  }, { timeoutMs, intervalMs: 1_000, describe: () => last });
}

/** Processes whose command line or environment names the state directory: what up started and left behind. */
async function processesUsing(directory: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)) {
    const read = (file: string) => readFile(`/proc/${pid}/${file}`, 'latin1').catch(() => '');
    const [cmdline, environ] = await Promise.all([read('cmdline'), read('environ')]);
    if (cmdline.includes(directory) || environ.includes(directory)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ').trim()}`);
  }
  return found;
}

const json = async <T>(response: Response | Promise<Response>) => (await (await response).json()) as T;

describe('npm run up', () => {
  it('brings up the platform, serves every example, and stops everything on Ctrl-C; a second start keeps the state; npm run down stops it', async () => {
    let up = await startUp();
    try {
      const { output, kubeconfig } = up;
      expect(output).toContain('Kublambda local platform is up: Kubernetes v1.');
      expect(kubeconfig).toBe(path.join(dir, 'kubeconfig'));
      // A progress line per step, with its time.
      expect(output).toMatch(/^up: Kubernetes control plane .*: done in \d+\.\d s$/m);
      expect(output).toMatch(/^up: the examples .*: done in \d+\.\d s$/m);
      const runner = up.endpoints.runner;
      for (const name of EXAMPLES) expect(output).toMatch(new RegExp(`^  ${name} +${runner.replaceAll('.', '\\.')}/${name}$`, 'm'));

      const names = await kubectl(['get', 'lam', '-A', '-o', 'custom-columns=NAME:.metadata.name', '--no-headers'], { kubeconfig });
      expect(names.stdout.split('\n').map((line) => line.trim())).toEqual(EXAMPLES);
      await allReady(kubeconfig, 240_000);
      // The runner's port is the local ingress: every lambda's status.url is on it, and each has an image.
      const rows = await kubectl(['get', 'lam', '-n', 'default', '-o', 'custom-columns=NAME:.metadata.name,URL:.status.url,IMAGE:.status.image', '--no-headers'], { kubeconfig });
      const registryHost = new URL(up.endpoints.registry).host;
      for (const [name, url, image] of rows.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/))) {
        expect(url).toBe(`${runner}/${name}`);
        expect(image).toMatch(new RegExp(`^${registryHost.replaceAll('.', '\\.')}/kublambda/default-${name}@sha256:[0-9a-f]{64}$`));
      }

      // The artifact store is a directory in --dir: each example's asset is there.
      expect(output).toContain(`artifacts   ${path.join(dir, 'artifacts')}  (a local directory; --s3 for an S3 server)`);
      expect((await readdir(path.join(dir, 'artifacts', 'sha256'))).length).toBeGreaterThanOrEqual(EXAMPLES.length);

      // curl on each printed URL.
      expect(await (await fetch(`${runner}/hello?name=you`)).text()).toBe('hello, you\n');
      const first = await json<{ visits: number }>(fetch(`${runner}/visits`));
      const second = await json<{ visits: number }>(fetch(`${runner}/visits`));
      expect(second.visits).toBe(first.visits + 1);
      expect(await json(fetch(`${runner}/durations?text=2h`))).toEqual({ text: '2h', ms: 7_200_000 });
      const todo = await fetch(`${runner}/todos`, { method: 'POST', body: JSON.stringify({ title: 'try kublambda' }) });
      expect(todo.status).toBe(201);
      const created = (await todo.json()) as { id: string };
      expect(await json(fetch(`${runner}/todos/${created.id}`))).toEqual({ id: created.id, title: 'try kublambda', done: false });
      expect((await fetch(`${runner}/todos/999`)).status).toBe(404);

      // The watch examples: a ConfigMap labelled app=demo calls visits, one labelled audit=true
      // is recorded by config-audit in its state table.
      const kubectlOk = async (args: string[]) => expect((await kubectl(args, { kubeconfig })).stderr).toBe('');
      await kubectlOk(['create', 'configmap', 'demo', '--from-literal=enabled=true', '-n', 'default']);
      await kubectlOk(['label', 'configmap', 'demo', 'app=demo', '-n', 'default']);
      await kubectlOk(['create', 'configmap', 'app-settings', '--from-literal=mode=fast', '-n', 'default']);
      await kubectlOk(['label', 'configmap', 'app-settings', 'audit=true', '-n', 'default']);
      const audited = await waitUntil('config-audit to record app-settings', async () => {
        const entries = await json<Array<{ configMap: string; keys: string[] }>>(fetch(`${runner}/config-audit`));
        return entries.find((entry) => entry.configMap === 'default/app-settings');
      }, { timeoutMs: 60_000 });
      expect(audited.keys).toEqual(['mode']);
      const operator = new Redis(output.match(/^  Redis admin\s+(\S+)/m)![1]!, { maxRetriesPerRequest: 0 });
      try {
        // Read from its table, not by calling it: every call counts. At least once: a redelivery would count twice.
        const visits = createReadOnlyStateStore(operator).table('default', 'visits');
        await waitUntil('the visits watcher to call visits for the ConfigMap', async () => Number((await visits.get('total'))?.value) >= second.visits + 1, { timeoutMs: 60_000 });
        expect(Object.keys(await operator.hgetall(ROUTES_KEY)).sort()).toEqual(EXAMPLES.map((name) => `default/${name}`));
      } finally {
        operator.disconnect();
      }

      // The CLI through the API server only: builds, invoke, logs, state, events.
      const builds = await cli(up, ['builds', '-A', '-o', 'json']);
      expect(builds.stderr).toBe('');
      const records = (JSON.parse(builds.stdout) as { builds: { lambda: { name: string }; kind: string; state: string }[] }).builds;
      expect(records.map((b) => `${b.lambda.name} ${b.kind} ${b.state}`).sort()).toEqual(EXAMPLES.flatMap((name) => [`${name} asset completed`, `${name} image completed`]));
      const invoked = await waitUntil('kublambda invoke hello to answer', async () => {
        const result = await cli(up, ['invoke', 'hello', '--path', '?name=cli']);
        return result.exitCode === 0 ? result : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(invoked.stdout).toBe('hello, cli');
      const logged = await waitUntil('kublambda logs hello to show the greeting', async () => {
        const result = await cli(up, ['logs', 'hello']);
        return result.exitCode === 0 && result.stdout.includes('greeting cli') ? result : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(logged.stdout).toMatch(/^\S+Z kublambda-runner-\S+ [0-9a-f-]+ greeting cli$/m);
      const state = await cli(up, ['state', 'visits', 'visits', '-o', 'json']);
      expect(state.stderr).toBe('');
      expect((JSON.parse(state.stdout) as { entries: Array<{ key: string; value: number }> }).entries.find((entry) => entry.key === 'total')!.value).toBeGreaterThan(second.visits);
      const events = await cli(up, ['events', 'visits']);
      expect(events.stdout).toBe('no dead letters: every event its watch triggers matched was delivered');

      // A host rule: its URL is <host>.localhost on the runner port, and the runners route that host.
      const shop = { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { name: 'shop', namespace: 'default' }, spec: { source: { inline: 'export default (request) => new Response(`shop at ${new URL(request.url).pathname}`);' }, triggers: { http: { host: 'shop.example', path: '/' } } } };
      expect((await kubectl(['apply', '-f', '-'], { kubeconfig, input: JSON.stringify(shop) })).exitCode).toBe(0);
      const runnerPort = new URL(runner).port;
      const shopUrl = await waitUntil('shop to have its URL', async () => (await kubectl(['get', 'lam', 'shop', '-n', 'default', '-o', 'jsonpath={.status.url}'], { kubeconfig })).stdout || undefined, { timeoutMs: 120_000, intervalMs: 500 });
      expect(shopUrl).toBe(`http://shop.example.localhost:${runnerPort}/`);
      // As curl sends it: to loopback, with the URL's host (Node's fetch would not resolve *.localhost).
      const viaHost = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: Number(runnerPort), path: '/cart', headers: { host: `shop.example.localhost:${runnerPort}` } }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve(`${response.statusCode} ${body}`));
        }).on('error', reject);
      });
      expect(viaHost).toBe('200 shop at /cart');
      expect((await fetch(`${runner}/cart`)).status).toBe(404);

      // A new lambda: init + deploy, its URL answers; a type error fails the deploy with file:line:col.
      const work = await mkdtemp(path.join(os.tmpdir(), 'kublambda-up-user-'));
      try {
        expect((await cli(up, ['init', 'greeter'], { cwd: work })).exitCode).toBe(0);
        const deployed = await cli(up, ['deploy', 'greeter', '--wait-seconds', '180'], { cwd: work });
        expect(deployed.exitCode).toBe(0);
        expect(deployed.stdout).toBe(`${runner}/default/greeter`);
        expect(await json(fetch(`${deployed.stdout}?name=new`))).toMatchObject({ hello: 'new' });
        await writeFile(path.join(work, 'greeter', 'handler.ts'), "const n: number = 'not a number';\nexport default () => new Response(String(n));\n");
        const broken = await cli(up, ['deploy', 'greeter', '--wait-seconds', '180'], { cwd: work });
        expect(broken.exitCode).toBe(1);
        expect(broken.stderr).toMatch(/handler\.ts:1:7: .*not assignable to type 'number'/);
        const deleted = await cli(up, ['delete', 'greeter']);
        expect(deleted.exitCode).toBe(0);
        expect((await kubectl(['get', 'lam', 'greeter', '-n', 'default'], { kubeconfig })).stderr).toContain('NotFound');
      } finally {
        await rm(work, { recursive: true, force: true });
      }

      // Load makes the autoscaler add runners (a runner process per pod of kublambda-runner), the
      // ingress port spreads it over them; bounded: it stops by itself after at most 90 s.
      const slow = { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { name: 'slow', namespace: 'default' }, spec: { source: { inline: 'export default async () => { await new Promise((resolve) => setTimeout(resolve, 200)); return new Response("slow"); };' }, triggers: { http: { path: '/slow' } } } };
      expect((await kubectl(['apply', '-f', '-'], { kubeconfig, input: JSON.stringify(slow) })).exitCode).toBe(0);
      await waitUntil('slow to answer', async () => (await fetch(`${runner}/slow`).catch(() => undefined))?.status === 200, { timeoutMs: 120_000, intervalMs: 500 });
      const replicas = async () => Number((await kubectl(['get', 'deployment', 'kublambda-runner', '-n', 'kublambda-system', '-o', 'jsonpath={.spec.replicas}'], { kubeconfig })).stdout);
      expect(await replicas()).toBe(1);
      const loadEnds = Date.now() + 90_000;
      let scaled = false;
      const load = Promise.all(Array.from({ length: 24 }, async () => {
        while (!scaled && Date.now() < loadEnds) await fetch(`${runner}/slow`).then((response) => response.text()).catch(() => undefined);
      }));
      try {
        await waitUntil('the autoscaler to add a runner', async () => (await replicas()) >= 2, { timeoutMs: 80_000, intervalMs: 500 });
        // The new pod gets a runner of its own, which serves too.
        const runnerPods = async () => (await kubectl(['get', 'pods', '-n', 'kublambda-system', '-l', 'app.kubernetes.io/component=runner', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'], { kubeconfig })).stdout.trim().split('\n').filter((line) => line.endsWith(' True'));
        await waitUntil('a second runner pod to be Ready', async () => (await runnerPods()).length >= 2, { timeoutMs: 60_000, intervalMs: 500 });
      } finally {
        scaled = true;
        await load;
      }

      // Its registry takes no push without the credentials it printed; its Redis none without a password.
      const [, user, password] = /^  registry\s+\S+\s+\(user (\S+), password (\S+);/m.exec(output)!;
      expect((await fetch(`${up.endpoints.registry}/v2/kublambda/evil/blobs/uploads/`, { method: 'POST' })).status).toBe(401);
      const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      expect((await fetch(`${up.endpoints.registry}/v2/kublambda/ok/blobs/uploads/`, { method: 'POST', headers: { authorization } })).status).toBe(202);
      const redisUrl = new URL(up.endpoints.Redis);
      expect(await rawRedisReplies(Number(redisUrl.port), ['PING', `HGETALL ${ROUTES_KEY}`], redisUrl.hostname)).toEqual(Array(2).fill('-NOAUTH Authentication required.'));

      // Ctrl-C: everything stops, nothing listens any more.
      up.process.kill('SIGINT');
      expect((await up.process).exitCode).toBe(0);
      for (const endpoint of Object.values(up.endpoints)) expect(await acceptsConnections(endpoint)).toBe(false);
      expect(await processesUsing(dir)).toEqual([]);

      // The state's assets are in the directory store: a start with the S3 server is refused, and says why.
      const switched = await runUp('--s3');
      expect(switched.exitCode).toBe(2);
      expect(switched.all).toBe(`up: ${dir} keeps its artifacts in a local directory (no --s3); start as before, or add --reset to start afresh with the S3 server`);

      // A second start on the same directory: the lambdas, their routes and their state are still there.
      up = await startUp();
      await allReady(up.kubeconfig, 120_000);
      const again = await waitUntil('visits to answer after the restart', async () => {
        const response = await fetch(`${up.endpoints.runner}/visits`).catch(() => undefined);
        return response?.ok ? ((await response.json()) as { visits: number }) : undefined;
      }, { timeoutMs: 60_000 });
      expect(again.visits).toBeGreaterThan(second.visits + 1);
      expect(await json(fetch(`${up.endpoints.runner}/todos/${created.id}`))).toMatchObject({ title: 'try kublambda' });

      // npm run down, from elsewhere: stops it as Ctrl-C does.
      const down = await execa(process.execPath, [path.resolve(import.meta.dirname, 'down.ts'), '--dir', dir], { reject: false });
      expect(down.stdout).toContain('down: stopped');
      expect((await up.process).exitCode).toBe(0);
      for (const endpoint of Object.values(up.endpoints)) expect(await acceptsConnections(endpoint)).toBe(false);
      expect(await processesUsing(dir)).toEqual([]);
    } finally {
      // On a failure too, the way a user stops it, so it stops what it started; SIGKILL only
      // if it does not stop within the limit.
      if (!up.exited()) {
        up.process.kill('SIGINT');
        await Promise.race([up.process, new Promise((resolve) => setTimeout(resolve, 60_000))]);
        up.process.kill('SIGKILL');
      }
    }
  }, 900_000);
});
