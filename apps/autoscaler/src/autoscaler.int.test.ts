// The autoscaler against the real API server, kube-controller-manager, kube-scheduler and kwok.
// Pods never run here: kwok marks the runner Deployment's pods Running and Ready with loopback
// IPs (127.1.x.y), the controller-manager writes the runner Service's EndpointSlices from them,
// and each pod is served by a REAL runner process started locally on that pod's IP and
// container port (servePodsLocally), so the EndpointSlices lead to real runners. The
// autoscaler runs as a local process with short windows. Load comes from autocannon, sent to
// the first runner's address (there is no Service proxy here): the autoscaler scales on the
// pool's total. Every address used is in 127.0.0.0/8.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import autocannon from 'autocannon';
import { createTestNamespace, freePort, servePodsLocally, startPlatformService, testKubeConfig, waitUntil, type ManagedProcess, type PodProcesses } from '@kublambda/dev-servers';
import { startRunnerBackends, startRunnerProcess, type RunnerBackends } from '../../runner/src/runner-process.testing.ts';

const kubeConfig = testKubeConfig();
const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
const coordination = kubeConfig.makeApiClient(k8s.CoordinationV1Api);
const eventsApi = kubeConfig.makeApiClient(k8s.EventsV1Api);

const DEPLOYMENT = 'kublambda-runner';
const STABLE_WINDOW_SECONDS = 10;
/** 5 x 0.8: 4 requests at once per pod, so 16 connections of load ask for 4 pods. */
const SCALING_ENV = {
  STABLE_WINDOW_SECONDS: String(STABLE_WINDOW_SECONDS),
  PANIC_WINDOW_PERCENT: '20',
  TARGET_CONCURRENCY: '5',
  TARGET_UTILIZATION: '0.8',
  MIN_REPLICAS: '1',
  // Room above the need (4), so a pool running away would show.
  MAX_REPLICAS: '10',
  LEASE_DURATION_MS: '3000',
  RENEW_DEADLINE_MS: '2000',
  RETRY_PERIOD_MS: '500',
  // A runner under full load on a shared 2-core machine can take longer than the default
  // 500 ms to answer its scrape; a failed scrape counts as busy as the busiest runner.
  SCRAPE_TIMEOUT_MS: '900',
};
const LOAD_CONNECTIONS = 16;
const SLOW_LAMBDA = 'export default async () => { await new Promise((resolve) => setTimeout(resolve, 75)); return new Response("slow"); }';

let backends: RunnerBackends;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'autoscaler-test-'));
  backends = await startRunnerBackends();
  await backends.publishRoute(SLOW_LAMBDA, { namespace: 'ns', name: 'slow', pathPrefix: '/slow' });
});
afterAll(async () => {
  await backends?.stop();
  // KEEP_DIR=1 keeps the processes' logs for a look after a failure.
  if (dir && !process.env.KEEP_DIR) await rm(dir, { recursive: true, force: true });
});

interface RunnerPool {
  namespace: string;
  pods: PodProcesses;
  replicas(): Promise<number>;
  /** The served pods' processes, the first one (the one load goes to) first. */
  firstRunner(): { ip: string; process: ManagedProcess };
  port: number;
  startAutoscaler(identity: string): Promise<{ process: ManagedProcess; decisions(): Promise<number>; scrapeFailures(): Promise<number> }>;
  leaseHolder(): Promise<string | undefined>;
  /** The replicas, the EndpointSlices' endpoints and the served pods, for timeouts to show. */
  describe(): Promise<string>;
}

/** A namespace with the runner Deployment (one replica to start) and Service, each Ready pod served by a runner process; everything removed afterwards. */
async function withRunnerPool(test: (pool: RunnerPool) => Promise<void>): Promise<void> {
  const namespace = await createTestNamespace(kubeConfig, 'autoscaler');
  const cleanups: Array<() => Promise<unknown>> = [() => namespace.delete()];
  try {
    const port = await freePort();
    const labels = { app: DEPLOYMENT };
    await apps.createNamespacedDeployment({
      namespace: namespace.name,
      body: {
        metadata: { name: DEPLOYMENT, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'runner', image: 'kublambda/runner:test', ports: [{ name: 'http', containerPort: port }] }] } },
        },
      },
    });
    await core.createNamespacedService({
      namespace: namespace.name,
      body: { metadata: { name: 'kublambda-runner' }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } },
    });
    let order = 0;
    const pods = servePodsLocally({
      kubeConfig,
      namespace: namespace.name,
      labelSelector: `app=${DEPLOYMENT}`,
      start: ({ name, ip }) => startRunnerProcess(backends, { host: ip, port, dir, name: `${namespace.name}-${name}-${order++}`, env: { WORKER_POOL_SIZE: '0' } }),
    });
    cleanups.push(() => pods.stop());
    const first = await waitUntil('the first runner pod to be served', () => [...pods.served.values()][0], { timeoutMs: 30_000 });
    const autoscalers: ManagedProcess[] = [];
    cleanups.push(() => Promise.all(autoscalers.map((autoscaler) => autoscaler.stop(5_000))));
    await test({
      namespace: namespace.name,
      pods,
      port,
      replicas: async () => (await apps.readNamespacedDeploymentScale({ name: DEPLOYMENT, namespace: namespace.name })).spec?.replicas ?? 0,
      firstRunner: () => first,
      startAutoscaler: async (identity) => {
        const adminPort = await freePort();
        const process = await startPlatformService(
          'autoscaler',
          { KUBECONFIG: globalThis.process.env.KUBECONFIG!, RUNNER_NAMESPACE: namespace.name, LEADER_ELECTION_NAMESPACE: namespace.name, POD_NAME: identity, LOG_LEVEL: 'debug', RUNNER_DISCOVERY: 'pods', RUNNER_POD_SELECTOR: `app=${DEPLOYMENT}`, ADMIN_HOST: '127.0.0.1', ADMIN_PORT: String(adminPort), ...SCALING_ENV },
          { logDir: dir, name: `${namespace.name}-${identity}` },
        );
        autoscalers.push(process);
        const metric = async (name: string) => {
          const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
          return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
        };
        return { process, decisions: () => metric('kublambda_autoscaler_decisions_total'), scrapeFailures: () => metric('kublambda_autoscaler_scrape_failures_total') };
      },
      describe: async () => {
        const slices = await kubeConfig.makeApiClient(k8s.DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: namespace.name });
        const endpoints = slices.items.flatMap((slice) => (slice.endpoints ?? []).map((endpoint) => `${endpoint.targetRef?.name} ${endpoint.addresses[0]} ready=${endpoint.conditions?.ready}`));
        return `${await apps.readNamespacedDeploymentScale({ name: DEPLOYMENT, namespace: namespace.name }).then((scale) => scale.spec?.replicas)} replicas; ${slices.items.length} EndpointSlices [${endpoints.join(', ')}]; serving ${[...pods.served.keys()].join(', ')}`;
      },
      leaseHolder: async () =>
        (await coordination.readNamespacedLease({ name: 'kublambda-autoscaler', namespace: namespace.name }).catch(() => undefined))?.spec?.holderIdentity || undefined,
    });
    expect(pods.errors).toEqual([]);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** Load on the first runner until stopped (or, at the latest, after maxSeconds). */
function startLoad(pool: RunnerPool, maxSeconds = 40) {
  const { ip } = pool.firstRunner();
  if (!ip.startsWith('127.')) throw new Error(`refusing to send load to ${ip}, outside 127.0.0.0/8`);
  let resolveDone!: (result: autocannon.Result) => void;
  const done = new Promise<autocannon.Result>((resolve) => (resolveDone = resolve));
  const instance = autocannon({ url: `http://${ip}:${pool.port}/slow`, connections: LOAD_CONNECTIONS, duration: maxSeconds, pipelining: 1, timeout: 5 }, (error, result) => {
    if (error) throw error;
    resolveDone(result);
  });
  return {
    stop: async () => {
      instance.stop();
      return done;
    },
  };
}

/** Watches the replicas while `during` runs, and returns every value seen. */
async function replicasDuring(pool: RunnerPool, during: () => Promise<unknown>): Promise<number[]> {
  const seen: number[] = [await pool.replicas()];
  let running = true;
  const sampling = (async () => {
    while (running) {
      seen.push(await pool.replicas());
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  try {
    await during();
  } finally {
    running = false;
    await sampling;
  }
  seen.push(await pool.replicas());
  return seen;
}

describe('autoscaler', () => {
  it('raises the replicas under load and lowers them as the load leaves the stable window', async () => {
    await withRunnerPool(async (pool) => {
      const autoscaler = await pool.startAutoscaler('autoscaler-a');
      const load = startLoad(pool);
      let result: autocannon.Result;
      let underLoad: number[];
      let failedScrapes = 0;
      try {
        await waitUntil('the replicas to rise to 3 or more', async () => (await pool.replicas()) >= 3, { timeoutMs: 30_000, describe: pool.describe });
        // Runners for the new pods, Ready once they serve.
        await waitUntil('3 runner pods to be served', () => pool.pods.served.size >= 3, { timeoutMs: 30_000 });
        // The load goes on for a few decisions: the pool stays near the need (4), pods starting or not.
        const from = await autoscaler.decisions();
        underLoad = await replicasDuring(pool, () => waitUntil('four more decisions under load', async () => (await autoscaler.decisions()) >= from + 4, { timeoutMs: 30_000 }));
        // Since it started: a failure while the pool grew can set the panic's floor.
        failedScrapes = await autoscaler.scrapeFailures();
      } finally {
        result = await load.stop();
      }
      expect(result.non2xx).toBe(0);
      expect(Math.min(...underLoad)).toBeGreaterThanOrEqual(3);
      // Near the need (4; a second of noisy queue growth on a loaded machine may add one or two),
      // unless a scrape failed: all the load goes to the first runner here (no Service proxy), so
      // a silent runner counted as busy as the busiest adds a whole 16 by design (missing data
      // never looks like idleness), and MAX_REPLICAS bounds it.
      expect(Math.max(...underLoad)).toBeLessThanOrEqual(failedScrapes === 0 ? 6 : Number(SCALING_ENV.MAX_REPLICAS));
      const peak = await pool.replicas();
      const loadEnded = Date.now();
      let firstDrop = 0;
      // The stable window's average falls as the load leaves it; the pool follows it down, at
      // most halving (MAX_SCALE_DOWN_RATE 2) per decision.
      const falling = await replicasDuring(pool, async () => {
        await waitUntil('the replicas to start falling', async () => (await pool.replicas()) < peak, { timeoutMs: 60_000, describe: pool.describe });
        firstDrop = Date.now() - loadEnded;
        await waitUntil('the replicas to fall back to 1', async () => (await pool.replicas()) === 1, { timeoutMs: 60_000, describe: pool.describe });
      });
      const steps = falling.filter((replicas, i) => i === 0 || replicas !== falling[i - 1]);
      for (let i = 1; i < steps.length; i++) expect(steps[i]!).toBeGreaterThanOrEqual(Math.floor(steps[i - 1]! / 2));
      expect(steps.every((replicas, i) => i === 0 || replicas < steps[i - 1]!)).toBe(true);
      const events = await eventsApi.listNamespacedEvent({ namespace: pool.namespace });
      const notes = events.items.filter((event) => event.regarding?.kind === 'Deployment' && event.regarding.name === DEPLOYMENT).map((event) => `${event.reason}: ${event.note}`);
      expect(notes).toEqual(expect.arrayContaining([expect.stringMatching(/^(Panic|Stable): Scaled from 1 to \d+ replicas/), expect.stringMatching(/^Stable: Scaled from \d+ to 1 replicas/)]));
      await waitUntil('the runners of removed pods to be stopped', () => pool.pods.served.size === 1, { timeoutMs: 30_000 });
      console.log(
        `scaled 1 -> ${peak} under ${LOAD_CONNECTIONS} connections (${Math.round(result.requests.average)} requests/s; between ${Math.min(...underLoad)} and ${Math.max(...underLoad)} replicas under load, ${failedScrapes} failed scrapes), ` +
          `first step down ${(firstDrop / 1000).toFixed(1)} s after the load ended, back to 1 after ${((Date.now() - loadEnded) / 1000).toFixed(1)} s`,
      );
    });
  }, 150_000);

  it('does not scale down while a runner stops answering its scrape', async () => {
    await withRunnerPool(async (pool) => {
      const autoscaler = await pool.startAutoscaler('autoscaler-a');
      const load = startLoad(pool);
      const runner = pool.firstRunner();
      try {
        await waitUntil('the replicas to rise to 3 or more', async () => (await pool.replicas()) >= 3, { timeoutMs: 30_000, describe: pool.describe });
        // The runner that carries the load stops answering anything, its scrape included.
        process.kill(runner.process.pid, 'SIGSTOP');
      } finally {
        await load.stop();
      }
      try {
        const raised = await pool.replicas();
        const from = await autoscaler.decisions();
        // Decisions spanning more than a stable window with that runner silent.
        const seen = await replicasDuring(pool, () =>
          waitUntil('decisions over a stable window and more', async () => (await autoscaler.decisions()) >= from + STABLE_WINDOW_SECONDS / 2 + 3, { timeoutMs: 60_000 }),
        );
        expect(Math.min(...seen)).toBeGreaterThanOrEqual(raised);
        // Its scrapes did fail all along: one a second.
        expect(await autoscaler.scrapeFailures()).toBeGreaterThanOrEqual(STABLE_WINDOW_SECONDS);
      } finally {
        process.kill(runner.process.pid, 'SIGCONT');
      }
    });
  }, 150_000);

  it('hands over to the standby when the leader is killed, without a change in replicas', async () => {
    await withRunnerPool(async (pool) => {
      const first = await pool.startAutoscaler('autoscaler-a');
      await waitUntil('autoscaler-a to lead', async () => (await pool.leaseHolder()) === 'autoscaler-a', { timeoutMs: 30_000 });
      const standby = await pool.startAutoscaler('autoscaler-b');
      const load = startLoad(pool);
      try {
        await waitUntil('the replicas to rise to 3 or more', async () => (await pool.replicas()) >= 3, { timeoutMs: 30_000, describe: pool.describe });
      } finally {
        await load.stop();
      }
      expect(await standby.decisions()).toBe(0);
      const before = await pool.replicas();
      // The load is gone: a leader with history would shrink the pool after its stable window;
      // a new leader does not shrink it in its first one.
      const seen = await replicasDuring(pool, async () => {
        await first.process.kill();
        await waitUntil('autoscaler-b to lead', async () => (await pool.leaseHolder()) === 'autoscaler-b', { timeoutMs: 30_000 });
        await waitUntil('autoscaler-b to decide a few times', async () => (await standby.decisions()) >= 3, { timeoutMs: 30_000 });
      });
      expect(new Set(seen)).toEqual(new Set([before]));
    });
  }, 150_000);
});
