// `helm install` gives a working platform: the chart installed for real into the test API server,
// with an external Redis and S3 (the project's loopback redis-server with its ACL users, and
// versitygw), then its api-controller, builder and runner Deployments run as local processes with
// exactly what their pods would get (startDeploymentLocally: the container's environment as the
// chart renders it, Secrets and $(VAR) references resolved, and the ServiceAccount's token where
// the pod mounts one). No kubelet runs: the processes stand in for the pods, only their volume
// paths and listening address are this machine's. A lambda applied with kubectl becomes Ready and
// answers through the runner.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import {
  createTestNamespace,
  forwardPodPort,
  freePort,
  kubectl,
  serviceAccountKubeconfig,
  startDeploymentLocally,
  startRedis,
  startS3,
  testKubeConfig,
  waitUntil,
  type LocalDeployment,
  type PodPortForward,
  type RedisServer,
  type S3Server,
} from '@kublambda/dev-servers';
import { chartPath, helm, helmOk } from './helm.testing.ts';

const kubeconfig = process.env.KUBECONFIG!;
let namespace: { name: string; delete(): Promise<void> };
let release: string;
let redis: RedisServer;
let s3: S3Server;
let logDir: string;
let runnerUrl: string;
let controllerAdminPort: number;
const started = new Map<string, LocalDeployment>();

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

const passwordOf = (url: string) => decodeURIComponent(new URL(url).password);

beforeAll(async () => {
  const kubeConfig = testKubeConfig();
  [redis, s3] = await Promise.all([startRedis(), startS3()]);
  namespace = await createTestNamespace(kubeConfig, 'chart-platform');
  release = namespace.name;
  logDir = await mkdtemp(path.join(os.tmpdir(), 'chart-platform-'));
  // What a platform team gives the chart for external stores: each service's Redis password and the S3 keys.
  await kubectlOk(['create', 'secret', 'generic', 'redis-passwords', '-n', namespace.name,
    ...(['api-controller', 'builder', 'runner'] as const).map((user) => `--from-literal=${user}=${passwordOf(redis.urlFor(user))}`)]);
  await kubectlOk(['create', 'secret', 'generic', 's3-keys', '-n', namespace.name, `--from-literal=accessKey=${s3.accessKey}`, `--from-literal=secretKey=${s3.secretKey}`]);
  await helmOk([
    'install', release, chartPath, '--namespace', namespace.name,
    '--set', 'redis.bundled=false', '--set', `redis.external.address=${redis.host}:${redis.port}`, '--set', 'redis.external.existingSecret=redis-passwords',
    '--set', 'objectStore.bundled=false', '--set', `objectStore.external.endpoint=${s3.url}`, '--set', 'objectStore.external.existingSecret=s3-keys',
    // The shared test cluster holds other tests' Lambdas: this controller reconciles its namespace's only.
    '--set', `apiController.watchNamespace=${namespace.name}`, '--set', 'apiController.replicas=1',
    '--set', 'autoscaler.enabled=false',
  ], { kubeconfig });

  const volumes = (name: string) => path.join(logDir, name);
  const local = (name: string, app: 'api-controller' | 'builder' | 'runner', env: Record<string, string> = {}) =>
    startDeploymentLocally({ kubeConfig, namespace: namespace.name, name, app, logDir, env }).then((deployment) => {
      started.set(app, deployment);
      return deployment;
    });
  const runnerPort = await freePort();
  runnerUrl = `http://127.0.0.1:${runnerPort}`;
  await Promise.all([
    // Its admin API's port is the pod's; here one free on this machine, with the runner where it is.
    local('kublambda-api-controller', 'api-controller', { ADMIN_PORT: String((controllerAdminPort = await freePort())), RUNNER_URL: runnerUrl }),
    // Its emptyDir volumes, here directories.
    local('kublambda-builder', 'builder', { BUILDER_CACHE_DIR: volumes('builder-cache'), HOME: volumes('builder-cache') }),
    local('kublambda-runner', 'runner', { HOST: '127.0.0.1', PORT: String(runnerPort), ASSET_CACHE_DIR: volumes('runner-assets') }),
  ]);
}, 240_000);

afterAll(async () => {
  for (const deployment of [...started.values()].reverse()) await deployment.process.stop();
  if (release) await helm(['uninstall', release, '--namespace', namespace.name, '--wait', '--timeout', '60s'], { kubeconfig });
  await namespace?.delete();
  await Promise.all([redis?.stop(), s3?.stop()]);
  if (logDir) await rm(logDir, { recursive: true, force: true });
}, 120_000);

describe('a platform installed by the chart', () => {
  it('gives its processes what the pods would get: the Redis URL with the Secret\'s password, and a token only where mounted', () => {
    const [controller, builder, runner] = ['api-controller', 'builder', 'runner'].map((app) => started.get(app)!.env);
    expect(controller!.REDIS_URL).toBe(redis.urlFor('api-controller'));
    expect(builder!.REDIS_URL).toBe(redis.urlFor('builder'));
    expect(runner!.REDIS_URL).toBe(redis.urlFor('runner'));
    expect({ controller: 'KUBECONFIG' in controller!, builder: 'KUBECONFIG' in builder!, runner: 'KUBECONFIG' in runner! }).toEqual({ controller: true, builder: false, runner: false });
    expect(runner!.ENV_ENCRYPTION_KEYS).toMatch(/^k1:[A-Za-z0-9+/]{43}=$/);
    expect(runner!.ENV_ENCRYPTION_KEYS).toBe(controller!.ENV_ENCRYPTION_KEYS);
  });

  it('builds, routes and serves a lambda applied with kubectl', async () => {
    await kubectlOk(['apply', '-n', namespace.name, '-f', '-'], JSON.stringify({
      apiVersion: 'kublambda.io/v1alpha1',
      kind: 'Lambda',
      metadata: { name: 'hello' },
      spec: { source: { inline: 'export default async (request: Request) => new Response(`hello from ${new URL(request.url).pathname}`)' } },
    }));
    let conditions = '';
    await waitUntil('the lambda to be Ready', async () => {
      const lambda = JSON.parse(await kubectlOk(['get', 'lambda', 'hello', '-n', namespace.name, '-o', 'json'])) as { status?: { conditions?: Array<{ type: string; status: string; reason?: string }> } };
      conditions = JSON.stringify(lambda.status?.conditions ?? []);
      return lambda.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
    }, { timeoutMs: 120_000, intervalMs: 250, describe: () => conditions });
    let answer = { status: 0, body: '' };
    await waitUntil('the runner to serve the lambda', async () => {
      const response = await fetch(`${runnerUrl}/${namespace.name}/hello/there`);
      answer = { status: response.status, body: await response.text() };
      return answer.status === 200;
    }, { timeoutMs: 30_000, intervalMs: 100, describe: () => JSON.stringify(answer) });
    expect(answer).toEqual({ status: 200, body: 'hello from /there' });
  }, 180_000);

  it('answers the kublambda CLI of a developer with the chart\'s kublambda-cli Role, through the API server only', async () => {
    const kubeConfig = testKubeConfig();
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    // The chart's pods run as the processes here: their ports lead to them, as a kubelet's would.
    const podsOf = async (component: string) =>
      (await core.listNamespacedPod({ namespace: namespace.name, labelSelector: `app.kubernetes.io/name=kublambda,app.kubernetes.io/component=${component}` })).items.map((pod) => pod.metadata!.name!);
    const forwards: PodPortForward[] = [];
    for (const pod of await podsOf('runner')) forwards.push(await forwardPodPort(kubeConfig, { namespace: namespace.name, pod, ports: [8080], target: { address: '127.0.0.1', port: Number(new URL(runnerUrl).port) } }));
    for (const pod of await podsOf('api-controller')) forwards.push(await forwardPodPort(kubeConfig, { namespace: namespace.name, pod, ports: [9091], target: { address: '127.0.0.1', port: controllerAdminPort } }));
    try {
      // A developer: Lambdas in the namespace, and the chart's Role for the platform's pods.
      await kubectlOk(['create', 'serviceaccount', 'developer', '-n', namespace.name]);
      await kubectlOk(['create', 'role', 'lambda-editor', '--verb=get,list,watch,create,update,patch,delete', '--resource=lambdas.kublambda.io', '-n', namespace.name]);
      await kubectlOk(['create', 'rolebinding', 'developer-lambdas', '--role=lambda-editor', `--serviceaccount=${namespace.name}:developer`, '-n', namespace.name]);
      await kubectlOk(['create', 'rolebinding', 'developer-kublambda', '--role=kublambda-cli', `--serviceaccount=${namespace.name}:developer`, '-n', namespace.name]);
      const token = await core.createNamespacedServiceAccountToken({ namespace: namespace.name, name: 'developer', body: { spec: { audiences: [], expirationSeconds: 600 } } });
      const developerKubeconfig = path.join(logDir, 'developer.kubeconfig');
      await writeFile(developerKubeconfig, serviceAccountKubeconfig(kubeConfig, namespace.name, 'developer', token.status!.token!), { mode: 0o600 });
      const cli = (args: string[]) =>
        execa(process.execPath, [path.resolve(import.meta.dirname, '../../apps/cli/src/main.ts'), ...args, '-n', namespace.name], { reject: false, env: { KUBECONFIG: developerKubeconfig }, extendEnv: false });

      await writeFile(path.join(logDir, 'counter.yaml'), 'apiVersion: kublambda.io/v1alpha1\nkind: Lambda\nmetadata: {name: counter}\nspec:\n  source: {inline: "export default async (request, context) => Response.json({ count: await context.state.table(\'counts\').increment(\'calls\', 1) })"}\n  stateTables: [counts]\n  triggers: {http: {}}\n');
      const deployed = await cli(['deploy', path.join(logDir, 'counter.yaml'), '--wait-seconds', '150']);
      expect([deployed.exitCode, deployed.stdout]).toEqual([0, `/${namespace.name}/counter`]);
      // kwok takes up PortForward objects through its watch: the first tries may be refused.
      const invoked = await waitUntil('kublambda invoke counter to answer', async () => {
        const result = await cli(['invoke', 'counter', '-X', 'POST', '--platform-namespace', namespace.name]);
        return result.exitCode === 0 ? result : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(JSON.parse(invoked.stdout)).toEqual({ count: 1 });
      const state = await cli(['state', 'counter', 'counts', '-o', 'json', '--platform-namespace', namespace.name]);
      expect(state.stderr).toBe('');
      expect((JSON.parse(state.stdout) as { entries: Array<{ key: string; value: number }> }).entries).toEqual([expect.objectContaining({ key: 'calls', value: 1 })]);
      const events = await cli(['events', 'counter', '--platform-namespace', namespace.name]);
      expect([events.exitCode, events.stdout]).toEqual([0, 'no dead letters: every event its watch triggers matched was delivered']);
    } finally {
      for (const forward of forwards) await forward.delete();
    }
  }, 240_000);

  it('delivers a watch trigger through the event-watcher it grants only what the lambda watches', async () => {
    const namespaceName = namespace.name;
    await kubectlOk(['apply', '-n', namespace.name, '-f', '-'], JSON.stringify({
      apiVersion: 'kublambda.io/v1alpha1',
      kind: 'Lambda',
      metadata: { name: 'seen' },
      spec: {
        source: {
          inline: [
            'export default async (request: Request, context) => {',
            '  const table = context.state.table("seen");',
            '  if (request.method === "POST") return Response.json({ seen: await table.increment(request.headers.get("ce-subject") ?? "?", 1) });',
            `  return Response.json({ seen: (await table.get("${namespaceName}/demo"))?.value ?? 0 });`,
            '};',
          ].join('\n'),
        },
        stateTables: ['seen'],
        triggers: { watch: [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=chart-demo', events: ['ADDED'] }] },
      },
    }));
    // kwok makes the watcher's pod Ready, so the lambda becomes Ready; the pod itself runs here.
    let conditions = '';
    await waitUntil('the watching lambda to be Ready', async () => {
      const lambda = JSON.parse(await kubectlOk(['get', 'lambda', 'seen', '-n', namespace.name, '-o', 'json'])) as { status?: { conditions?: Array<{ type: string; status: string }> } };
      conditions = JSON.stringify(lambda.status?.conditions ?? []);
      return lambda.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
    }, { timeoutMs: 120_000, intervalMs: 250, describe: () => conditions });
    const watcher = JSON.parse(await kubectlOk(['get', 'deployment', 'kublambda-watch-seen', '-n', namespace.name, '-o', 'json'])) as { spec: { template: { spec: { containers: Array<{ image: string }> } } } };
    expect(watcher.spec.template.spec.containers[0]!.image).toBe('ghcr.io/kublambda/event-watcher:0.1.0');
    const port = await freePort();
    const deployment = await startDeploymentLocally({
      kubeConfig: testKubeConfig(), namespace: namespace.name, name: 'kublambda-watch-seen', app: 'event-watcher', logDir,
      env: { RUNNER_URL: runnerUrl, HOST: '127.0.0.1', PORT: String(port) },
    });
    started.set('event-watcher', deployment);
    await kubectlOk(['apply', '-n', namespace.name, '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'demo', labels: { app: 'chart-demo' } } }));
    let seen: unknown;
    await waitUntil('the event to reach the lambda', async () => {
      seen = await (await fetch(`${runnerUrl}/${namespace.name}/seen`)).json();
      return (seen as { seen?: number }).seen === 1;
    }, { timeoutMs: 60_000, intervalMs: 250, describe: () => JSON.stringify(seen) });
  }, 240_000);
});
