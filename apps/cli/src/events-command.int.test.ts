// `kublambda events` as a user runs it: a process of its own with a kubeconfig and nothing
// else. The dead letters sit in a real redis-server as the event-watcher leaves them; the CLI
// reads and retries them through api-controller's admin API behind a stand-in pod
// (controller-admin.testing.ts), reached through the real API server's port-forward. A local
// HTTP server stands in for the runner and records the redelivered events.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { LAMBDA_GROUP, LAMBDA_KIND, LAMBDA_PLURAL, LAMBDA_VERSION } from '@kublambda/crd-types';
import { createTestNamespace, serviceAccountKubeconfig, startRedis, testKubeConfig, waitUntil, type RedisServer } from '@kublambda/dev-servers';
import type { RedisConnection } from '@kublambda/redis-connection';
import { ROUTES_KEY } from '@kublambda/route-table';
import { connectStateRedis } from '@kublambda/state-tables';
import { watcherKeys, type DeadLetter } from '@kublambda/watch-triggers';
import { startControllerAdminStandIn, type ControllerAdminStandIn } from './controller-admin.testing.ts';

const main = path.join(import.meta.dirname, 'main.ts');
const kubeConfig = testKubeConfig();
let redisServer: RedisServer;
let admin: Redis;
let controller: RedisConnection;
let namespace: { name: string; delete(): Promise<void> };
let standIn: ControllerAdminStandIn;
let runner: Server;
const received: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
let dir: string;

const letter = (id: string, subject: string): DeadLetter => ({
  id,
  type: 'io.kublambda.resource.added',
  subject,
  triggerIndex: 0,
  attempts: 5,
  lastError: 'HTTP 500: the handler threw',
  deadAt: '2026-12-02T10:00:00.000Z',
  object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: subject.split('/')[1], namespace: subject.split('/')[0] } },
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-cli-events-'));
  [redisServer, namespace] = await Promise.all([startRedis(), createTestNamespace(kubeConfig, 'cli-events')]);
  admin = new Redis(redisServer.adminUrl, { maxRetriesPerRequest: 0 });
  controller = await connectStateRedis(redisServer.urlFor('api-controller'), () => {});
  runner = createServer((request, response) => {
    received.push({ url: request.url!, headers: request.headers });
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  runner.listen(0, '127.0.0.1');
  await once(runner, 'listening');
  standIn = await startControllerAdminStandIn(kubeConfig, controller, `http://127.0.0.1:${(runner.address() as AddressInfo).port}`);
  await kubeConfig.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
    group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace: namespace.name,
    body: { apiVersion: `${LAMBDA_GROUP}/${LAMBDA_VERSION}`, kind: LAMBDA_KIND, metadata: { name: 'on-config' }, spec: { source: { inline: 'export default () => new Response("")' } } },
  });
  const keys = watcherKeys({ namespace: namespace.name, name: 'on-config' });
  for (const entry of [letter('u1/1', `${namespace.name}/first`), letter('u2/1', `${namespace.name}/second`)]) await admin.lpush(keys.deadLetters, JSON.stringify(entry));
  await admin.hset(ROUTES_KEY, `${namespace.name}/on-config`, JSON.stringify({ key: `${namespace.name}/on-config`, namespace: namespace.name, name: 'on-config', pathPrefix: `/${namespace.name}/on-config` }));
}, 120_000);

afterAll(async () => {
  await standIn?.stop();
  runner?.close();
  controller?.disconnect();
  admin?.disconnect();
  await Promise.all([redisServer?.stop(), namespace?.delete()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function kublambda(args: string[], kubeconfig = process.env.KUBECONFIG!) {
  return execa(process.execPath, [main, 'events', ...args, '-n', namespace.name, '--platform-namespace', standIn.platformNamespace], {
    reject: false,
    env: { KUBECONFIG: kubeconfig },
    extendEnv: false,
  });
}

describe('kublambda events', () => {
  it('lists the dead letters, then sends one again and it leaves the list', async () => {
    const listed = await kublambda(['on-config']);
    expect(listed.stderr).toBe('');
    expect(listed.exitCode).toBe(0);
    const lines = listed.stdout.split('\n');
    expect(lines[0]).toMatch(/^DEAD AT\s+TYPE\s+SUBJECT\s+TRIGGER\s+ATTEMPTS\s+ID\s+LAST ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^2026-12-02T10:00:00.000Z\\s+added\\s+${namespace.name}/second\\s+0\\s+5\\s+u2/1\\s+HTTP 500: the handler threw$`));
    expect(lines[2]).toContain('u1/1');

    const retried = await kublambda(['on-config', '--retry', 'u1/1']);
    expect(retried.stderr).toBe('');
    expect(retried.stdout).toBe('u1/1: delivered (HTTP 200), removed from the dead letters');
    expect(received).toEqual([expect.objectContaining({ url: `/${namespace.name}/on-config`, headers: expect.objectContaining({ 'ce-id': 'u1/1' }) })]);

    const json = await kublambda(['on-config', '-o', 'json']);
    expect((JSON.parse(json.stdout) as { deadLetters: DeadLetter[] }).deadLetters.map((entry) => entry.id)).toEqual(['u2/1']);
  }, 60_000);

  it('says so when the id is not there (exit 1), and refuses --retry with --retry-all (exit 2)', async () => {
    const missing = await kublambda(['on-config', '--retry', 'u9/9']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(`u9/9: api-controller's admin API answered 404: no dead letter "u9/9" for ${namespace.name}/on-config`);
    expect((await kublambda(['on-config', '--retry', 'x', '--retry-all'])).exitCode).toBe(2);
    const noLambda = await kublambda(['nope']);
    expect(noLambda.exitCode).toBe(1);
    expect(noLambda.stderr).toBe(`kublambda events: Lambda "nope" not found in namespace "${namespace.name}"`);
  }, 60_000);

  it('is governed by RBAC: without pods/portforward in the platform namespace it is "not allowed"', async () => {
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const rbac = kubeConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
    // A user who may read Lambdas in their namespace and list the platform's pods, nothing more.
    await core.createNamespacedServiceAccount({ namespace: namespace.name, body: { metadata: { name: 'dev' } } });
    await rbac.createNamespacedRole({ namespace: namespace.name, body: { metadata: { name: 'lambda-reader' }, rules: [{ apiGroups: [LAMBDA_GROUP], resources: [LAMBDA_PLURAL], verbs: ['get', 'list'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: namespace.name, body: { metadata: { name: 'dev' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'lambda-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'dev', namespace: namespace.name }] } });
    await rbac.createNamespacedRole({ namespace: standIn.platformNamespace, body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: standIn.platformNamespace, body: { metadata: { name: 'dev' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'dev', namespace: namespace.name }] } });
    const token = await core.createNamespacedServiceAccountToken({ namespace: namespace.name, name: 'dev', body: { spec: { audiences: [], expirationSeconds: 600 } } });
    const kubeconfig = path.join(dir, 'dev.kubeconfig');
    await writeFile(kubeconfig, serviceAccountKubeconfig(kubeConfig, namespace.name, 'dev', token.status!.token!), { mode: 0o600 });
    // RoleBindings take a moment to reach the authorizer: wait until the Lambda can be read.
    let last = '';
    const refused = await waitUntil('the refusal to come from port-forward, not from reading the Lambda', async () => {
      const result = await kublambda(['on-config'], kubeconfig);
      last = result.stderr;
      return result.stderr.includes('pods/portforward') ? result : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, describe: () => last });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`kublambda events: not allowed: this needs "get" and "create" on pods/portforward in ${standIn.platformNamespace}`);
  }, 60_000);
});
