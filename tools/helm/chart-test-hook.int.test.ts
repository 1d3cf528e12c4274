// The chart's `helm test` hook (templates/tests/chart-test.yaml running files/chart-test.mjs),
// run as its pod would run it, with exactly the RBAC the hook grants: its ServiceAccount, Role
// and RoleBinding applied to the real test API server, a token of that ServiceAccount, and the
// script started with this machine's Node. No pod runs (there is no kubelet): api-controller,
// builder and runner are local processes wired to the real API server, Redis and S3, and the
// script reaches the runner on loopback instead of through the runner Service.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { freePort, helmBinary, kubectl } from '@kublambda/dev-servers';
import { startLambdaPlatform, type LambdaPlatform } from '../../apps/api-controller/src/lambda-platform.testing.ts';

const chart = path.resolve(import.meta.dirname, '../../charts/kublambda');
const script = path.join(chart, 'files/chart-test.mjs');
let platform: LambdaPlatform;
let runnerUrl: string;
let credentialsDir: string;
let hookObjects: Array<{ kind: string; metadata: { name: string }; data?: Record<string, string> }>;

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** The hook script as its pod runs it: the ServiceAccount's token and namespace, the cluster's CA. */
function runHook(extraEnv: Record<string, string>) {
  const cluster = platform.kubeConfig.getCurrentCluster()!;
  return execa(process.execPath, [script], {
    reject: false,
    timeout: 240_000,
    env: {
      SERVICE_ACCOUNT_DIR: credentialsDir,
      KUBERNETES_API_URL: cluster.server,
      NODE_EXTRA_CA_CERTS: path.join(credentialsDir, 'ca.crt'),
      ...extraEnv,
    },
  });
}

beforeAll(async () => {
  platform = await startLambdaPlatform('chart-hook');
  await platform.startController();
  await platform.startBuilder();
  runnerUrl = await platform.startRunner();
  const rendered = await execa(await helmBinary(), ['template', 'kublambda', chart, '--namespace', platform.namespace, '--show-only', 'templates/tests/chart-test.yaml']);
  hookObjects = YAML.parseAllDocuments(rendered.stdout).map((document) => document.toJSON()).filter(Boolean);
  // The pod itself would never start here; everything it needs is applied.
  const rbac = hookObjects.filter((object) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(object.kind));
  await kubectlOk(['apply', '-n', platform.namespace, '-f', '-'], rbac.map((object) => YAML.stringify(object)).join('---\n'));
  credentialsDir = await mkdtemp(path.join(os.tmpdir(), 'chart-hook-'));
  const token = await kubectlOk(['create', 'token', 'kublambda-chart-test', '-n', platform.namespace]);
  await writeFile(path.join(credentialsDir, 'token'), token.trim());
  await writeFile(path.join(credentialsDir, 'namespace'), platform.namespace);
  await writeFile(path.join(credentialsDir, 'ca.crt'), Buffer.from(platform.kubeConfig.getCurrentCluster()!.caData!, 'base64'));
}, 180_000);

afterAll(async () => {
  await platform?.stop();
  if (credentialsDir) await rm(credentialsDir, { recursive: true, force: true });
}, 60_000);

describe('the helm test hook', () => {
  it('carries the script in its ConfigMap, as the pod mounts it', async () => {
    const configMap = hookObjects.find((object) => object.kind === 'ConfigMap');
    expect(configMap?.data?.['chart-test.mjs']?.trim()).toBe((await readFile(script, 'utf8')).trim());
    expect(hookObjects.map((object) => object.kind).sort()).toEqual(['ConfigMap', 'Pod', 'Role', 'RoleBinding', 'ServiceAccount']);
  });

  it('deploys a lambda with only its own RBAC, waits for Ready, calls it and removes it', async () => {
    const result = await runHook({ RUNNER_URL: runnerUrl });
    const lines = result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { message: string });
    expect({ exitCode: result.exitCode, stderr: result.stderr, messages: lines.map((line) => line.message) }).toEqual({
      exitCode: 0,
      stderr: '',
      messages: ['created the lambda', 'the lambda is Ready', 'the lambda answered', 'passed'],
    });
    // Deleted: gone once api-controller's finalizer has cleaned up.
    await platform.waitFor('kublambda-chart-test', 'gone', (lambda) => lambda === undefined, 60_000);
  }, 240_000);

  it('fails with the reason, and removes its lambda, when the runner cannot be reached', async () => {
    // A loopback port nothing listens on.
    const result = await runHook({ RUNNER_URL: `http://127.0.0.1:${await freePort()}`, CALL_ATTEMPTS: '2' });
    const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { message: string; error?: string };
    expect({ exitCode: result.exitCode, message: last.message }).toEqual({ exitCode: 1, message: 'failed' });
    expect(last.error).toMatch(/^the lambda answered 0 .*not 200/);
    // Deleted: gone once api-controller's finalizer has cleaned up.
    await platform.waitFor('kublambda-chart-test', 'gone', (lambda) => lambda === undefined, 60_000);
  }, 240_000);

  it.each([
    ['create', 'lambdas.kublambda.io', 'yes'],
    ['delete', 'lambdas.kublambda.io/kublambda-chart-test', 'yes'],
    ['delete', 'lambdas.kublambda.io/another', 'no'],
    ['get', 'lambdas.kublambda.io/another', 'no'],
    ['list', 'lambdas.kublambda.io', 'no'],
    ['get', 'secrets', 'no'],
  ])('its ServiceAccount: can-i %s %s is %s', async (verb, resource, answer) => {
    const result = await kubectl(['auth', 'can-i', verb, resource, '-n', platform.namespace, `--as=system:serviceaccount:${platform.namespace}:kublambda-chart-test`]);
    expect(result.stdout.trim()).toBe(answer);
  });
});
