// The lambda commands as a user runs them: the CLI in a process of its own with only a
// kubeconfig (its context's namespace the test's), against the shared test API server, with
// api-controller, builder and runner as local processes (startLambdaPlatform).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { serviceAccountKubeconfig } from '@kublambda/dev-servers';
import { startLambdaPlatform, type LambdaPlatform } from '../../api-controller/src/lambda-platform.testing.ts';

const TIMEOUT = 90_000;
const main = path.join(import.meta.dirname, 'main.ts');
let platform: LambdaPlatform;
let runner: string;
let dir: string;
let kubeconfig: string;

function kublambda(args: string[], options: { kubeconfig?: string; cwd?: string } = {}) {
  return execa(process.execPath, [main, ...args], {
    reject: false,
    extendEnv: false,
    cwd: options.cwd ?? dir,
    env: { KUBECONFIG: options.kubeconfig ?? kubeconfig, HOME: os.homedir() },
    timeout: 80_000,
  });
}

beforeAll(async () => {
  platform = await startLambdaPlatform('cli-lambdas');
  await Promise.all([platform.startController(), platform.startBuilder()]);
  runner = await platform.startRunner();
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-cli-lambdas-'));
  const config = new k8s.KubeConfig();
  config.loadFromString(platform.kubeConfig.exportConfig());
  const current = config.getCurrentContext();
  config.contexts = config.contexts.map((c) => (c.name === current ? { ...c, namespace: platform.namespace } : c));
  kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, config.exportConfig(), { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('kublambda deploy, get, describe, delete', () => {
  it('init + deploy: Ready, prints the path, the runner answers there; get, describe and delete', async () => {
    expect((await kublambda(['init', 'hello'])).exitCode).toBe(0);
    expect((await kublambda(['init', 'hello'])).stderr).toContain('already exists');
    const deployed = await kublambda(['deploy', 'hello']);
    expect(deployed.stderr).toContain(`lambda ${platform.namespace}/hello is Ready`);
    expect(deployed.exitCode).toBe(0);
    expect(deployed.stdout.trim()).toBe(`/${platform.namespace}/hello`);
    const response = await fetch(`${runner}${deployed.stdout.trim()}/x?name=cli`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ hello: 'cli', path: '/x' });

    const table = await kublambda(['get']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+URL\s+IMAGE\s+AGE$/);
    expect(table.stdout).toMatch(/^hello\s+True\s+\S+$/m);
    const json = JSON.parse((await kublambda(['get', 'hello', '-o', 'json'])).stdout);
    expect(json).toMatchObject({ kind: 'Lambda', metadata: { name: 'hello' } });

    const described = await kublambda(['describe', 'hello']);
    expect(described.exitCode).toBe(0);
    expect(described.stdout).toMatch(/^\s+Ready\s+True\s+Serving/m);
    expect(described.stdout).toMatch(/^Events:\n(\s+TYPE\s+REASON.*\n)(\s+Normal\s+\S+.*\n?)+/m);

    const deleted = await kublambda(['delete', 'hello']);
    expect(deleted.exitCode).toBe(0);
    expect(await platform.get('hello')).toBeUndefined();
    expect((await kublambda(['get', 'hello'])).stderr).toBe(`kublambda get: Lambda "hello" not found in namespace "${platform.namespace}"`);
  }, TIMEOUT);

  it('a type error: exit 1 with handler.ts:line:col', async () => {
    await writeFile(path.join(dir, 'handler.ts'), 'const n: number = "text";\nexport default () => new Response(String(n));\n');
    const result = await kublambda(['deploy', 'handler.ts', '--name', 'typo', '--type-check']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/handler\.ts:1:\d+: /);
  }, TIMEOUT);

  it('a ServiceAccount without RBAC on lambdas is told it is not allowed', async () => {
    const core = platform.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: platform.namespace, body: { metadata: { name: 'nobody' } } });
    const token = await core.createNamespacedServiceAccountToken({ namespace: platform.namespace, name: 'nobody', body: { spec: { audiences: [], expirationSeconds: 600 } } });
    const file = path.join(dir, 'nobody.kubeconfig');
    await writeFile(file, serviceAccountKubeconfig(platform.kubeConfig, platform.namespace, 'nobody', token.status!.token!), { mode: 0o600 });
    const result = await kublambda(['get'], { kubeconfig: file });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`not allowed: user "system:serviceaccount:${platform.namespace}:nobody" may not "list" lambdas.kublambda.io in namespace "${platform.namespace}"`);
  }, TIMEOUT);
});
