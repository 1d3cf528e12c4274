// Runs the local all-in-one as a child process, as `npm run up` does, with its own control plane.
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { kubectl, portAcceptsConnections, rawRedisReplies, waitUntil } from '@kublambda/dev-servers';
import { createReadOnlyStateStore } from '@kublambda/state-tables';
import { ROUTES_KEY } from '@kublambda/route-table';

const acceptsConnections = (url: string) => {
  const { hostname, port } = new URL(url);
  return portAcceptsConnections(Number(port), hostname);
};

describe('npm run up', () => {
  it('brings up the platform, serves the example lambda and stops everything on Ctrl-C', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-up-'));
    const up = execa(process.execPath, [path.resolve(import.meta.dirname, 'up.ts'), '--dir', dir], { reject: false, all: true });
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        up.all!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Ctrl-C stops everything.')) resolve();
        });
        void up.then(() => reject(new Error(`up exited early:\n${output}`)));
      });
      expect(output).toContain('Kublambda local platform is up: Kubernetes v1.');
      const kubeconfig = output.match(/export KUBECONFIG=(\S+)/)![1]!;
      expect(kubeconfig).toBe(path.join(dir, 'kubeconfig'));
      const endpoints = ['API server', 'Redis', 'S3', 'registry', 'runner'].map((name) => output.match(new RegExp(`^  ${name}\\s+(\\S+)`, 'm'))![1]!);

      const lambdas = await kubectl(['get', 'lam', '-A', '-o', 'custom-columns=NAME:.metadata.name,TIMEOUT:.spec.timeoutSeconds', '--no-headers'], { kubeconfig });
      expect(lambdas.stdout.split('\n').map((line) => line.trim().split(/\s+/))).toEqual([['hello', '30'], ['visits', '30']]);
      const ready = await kubectl(['wait', '--for=condition=Ready', 'lam/hello', 'lam/visits', '-n', 'default', '--timeout=90s'], { kubeconfig });
      expect(ready.stdout.trim().split('\n')).toEqual(['lambda.kublambda.io/hello condition met', 'lambda.kublambda.io/visits condition met']);
      // Each example has an image in the local registry (the IMAGE column of kubectl get lam).
      const images = await kubectl(['get', 'lam', '-n', 'default', '-o', 'custom-columns=NAME:.metadata.name,IMAGE:.status.image', '--no-headers'], { kubeconfig });
      const registryHost = new URL(output.match(/^  registry\s+(\S+)/m)![1]!).host;
      const image = (name: string) => new RegExp(`^${registryHost.replaceAll('.', '\\.')}/kublambda/default-${name}@sha256:[0-9a-f]{64}$`);
      const rows = images.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/));
      expect(rows.map(([name]) => name)).toEqual(['hello', 'visits']);
      for (const [name, reference] of rows) expect(reference).toMatch(image(name!));
      // The build queue through the API server: the CLI with the kubeconfig only, no Redis address
      // or credential (api-controller has already taken these builds' outcomes off the queue; the
      // builder knows them from the queue's event history).
      const cli = (args: string[]) =>
        execa(process.execPath, [path.resolve(import.meta.dirname, '../../apps/cli/src/main.ts'), ...args], { reject: false, env: { KUBECONFIG: kubeconfig, HOME: os.homedir() }, extendEnv: false });
      const listed = await cli(['builds', '-A', '-o', 'json']);
      expect(listed.stderr).toBe('');
      const builds = (JSON.parse(listed.stdout) as { builds: { lambda: { namespace: string; name: string }; kind: string; state: string }[] }).builds;
      expect(builds.map((b) => `${b.lambda.namespace}/${b.lambda.name} ${b.kind} ${b.state}`).sort()).toEqual([
        'default/hello asset completed',
        'default/hello image completed',
        'default/visits asset completed',
        'default/visits image completed',
      ]);
      const table = await cli(['builds', '-A']);
      expect(table.exitCode).toBe(0);
      expect(table.stdout.split('\n')[0]).toMatch(/^LAMBDA\s+KIND\s+DIGEST\s+STATE\s+DURATION\s+ATTEMPTS\s+AGE\s+ERROR$/);
      expect(table.stdout).toMatch(/^default\/hello\s+image\s+sha256:[0-9a-f]{12}\s+completed\s/m);
      expect(output).toContain('npx kublambda builds -A');
      const runner = endpoints[4]!;
      // The runner's port is the local ingress: every lambda's status.url is on it.
      const urls = await kubectl(['get', 'lam', '-n', 'default', '-o', 'custom-columns=NAME:.metadata.name,URL:.status.url', '--no-headers'], { kubeconfig });
      expect(urls.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/))).toEqual([
        ['hello', `${runner}/hello`],
        ['visits', `${runner}/visits`],
      ]);
      // invoke and logs reach the runner through the API server only (port-forward, pods/log): the
      // CLI gets the kubeconfig and nothing else. kwok takes up the stand-in pod's PortForward and
      // Logs through its watch, so the first tries may be refused.
      const invoked = await waitUntil('kublambda invoke hello to answer', async () => {
        const result = await cli(['invoke', 'hello', '--path', '?name=cli']);
        return result.exitCode === 0 ? result : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(invoked.stdout).toBe('hello, cli');
      const logged = await waitUntil('kublambda logs hello to show the greeting', async () => {
        const result = await cli(['logs', 'hello']);
        return result.exitCode === 0 && result.stdout.includes('greeting cli') ? result : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(logged.stdout).toMatch(/^\S+Z kublambda-runner-\S+ [0-9a-f-]+ greeting cli$/m);
      expect(logged.stdout).not.toContain('visits');
      const hello = await fetch(`${runner}/hello?name=you`);
      expect(hello.status).toBe(200);
      expect(await hello.text()).toBe('hello, you\n');
      // The visits example counts in its state table.
      const first = (await (await fetch(`${runner}/visits`)).json()) as { visits: number };
      const second = (await (await fetch(`${runner}/visits`)).json()) as { visits: number };
      expect(second.visits).toBe(first.visits + 1);
      // Its watch trigger runs too: a ConfigMap labelled app=demo with enabled=true calls it, through
      // the watcher up runs from the Deployment api-controller made.
      const created = await kubectl(['create', 'configmap', 'demo', '--from-literal=enabled=true', '-n', 'default'], { kubeconfig });
      expect(created.exitCode).toBe(0);
      expect((await kubectl(['label', 'configmap', 'demo', 'app=demo', '-n', 'default'], { kubeconfig })).exitCode).toBe(0);
      // Read from its table, not by calling it: every call counts.
      const operator = new Redis(output.match(/^  Redis admin\s+(\S+)/m)![1]!, { maxRetriesPerRequest: 0 });
      try {
        const visits = createReadOnlyStateStore(operator).table('default', 'visits');
        // At least once: a redelivery would count twice.
        await waitUntil('the visits watcher to call visits for the ConfigMap', async () => Number((await visits.get('total'))?.value) >= second.visits + 1, { timeoutMs: 60_000 });
      } finally {
        operator.disconnect();
      }
      // The same table and the watch trigger's dead letters (none: it delivered) through the CLI:
      // a port-forward to api-controller's admin API, the kubeconfig only.
      const state = await cli(['state', 'visits', 'visits', '-o', 'json']);
      expect(state.stderr).toBe('');
      const total = (JSON.parse(state.stdout) as { entries: Array<{ key: string; value: number }> }).entries.find((entry) => entry.key === 'total');
      expect(total!.value).toBeGreaterThanOrEqual(second.visits + 1);
      const events = await cli(['events', 'visits']);
      expect(events.stderr).toBe('');
      expect(events.stdout).toBe('no dead letters: every event its watch triggers matched was delivered');
      for (const endpoint of endpoints.slice(1)) {
        expect(await acceptsConnections(endpoint)).toBe(true);
      }
      // Its registry takes no push without the credentials it printed, and takes them.
      const registry = endpoints[3]!;
      const [, user, password] = /^  registry\s+\S+\s+\(user (\S+), password (\S+);/m.exec(output)!;
      expect((await fetch(`${registry}/v2/kublambda/evil/blobs/uploads/`, { method: 'POST' })).status).toBe(401);
      const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      expect((await fetch(`${registry}/v2/kublambda/ok/blobs/uploads/`, { method: 'POST', headers: { authorization } })).status).toBe(202);
      // Its Redis serves no one without a password; the operator's admin URL sees the routes.
      expect(await rawRedisReplies(Number(new URL(endpoints[1]!).port), ['PING', `HGETALL ${ROUTES_KEY}`], new URL(endpoints[1]!).hostname)).toEqual(Array(2).fill('-NOAUTH Authentication required.'));
      expect(endpoints[1]).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      const admin = new Redis(output.match(/^  Redis admin\s+(\S+)/m)![1]!, { maxRetriesPerRequest: 0 });
      try {
        expect(Object.keys(await admin.hgetall(ROUTES_KEY)).sort()).toEqual(['default/hello', 'default/visits']);
      } finally {
        admin.disconnect();
      }

      up.kill('SIGINT');
      const result = await up;
      expect(result.exitCode).toBe(0);
      for (const endpoint of endpoints) {
        expect(await acceptsConnections(endpoint)).toBe(false);
      }
    } finally {
      up.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
