// `kublambda state` as a user runs it: the command in a process of its own with the kubeconfig
// and nothing else, reading a Lambda from the shared test API server and the table through
// api-controller's admin API (controller-admin.testing.ts: the real router on a real Redis,
// reached through the API server's port-forward to a stand-in pod).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import type { Redis } from 'ioredis';
import type { RedisConnection } from '@kublambda/redis-connection';
import { LAMBDA_GROUP, LAMBDA_KIND, LAMBDA_PLURAL, LAMBDA_VERSION } from '@kublambda/crd-types';
import { createTestNamespace, startRedis, testKubeConfig, type RedisServer } from '@kublambda/dev-servers';
import { connectStateRedis, createStateStore } from '@kublambda/state-tables';
import { startControllerAdminStandIn, type ControllerAdminStandIn } from './controller-admin.testing.ts';

const main = path.join(import.meta.dirname, 'main.ts');

let redisServer: RedisServer;
let redis: RedisConnection;
let adminRedis: RedisConnection;
let namespace: { name: string; delete(): Promise<void> };
let admin: ControllerAdminStandIn;

beforeAll(async () => {
  const kubeConfig = testKubeConfig();
  [redisServer, namespace] = await Promise.all([startRedis(), createTestNamespace(kubeConfig, 'cli-state')]);
  // Tables are written as the runner does it; the admin API reads them as api-controller.
  redis = await connectStateRedis(redisServer.urlFor('runner'), () => {});
  adminRedis = await connectStateRedis(redisServer.urlFor('api-controller'), () => {});
  admin = await startControllerAdminStandIn(kubeConfig, adminRedis, 'http://127.0.0.1:1');
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  for (const [name, stateTables] of [['shop', ['orders', 'carts']], ['plain', undefined]] as const) {
    await api.createNamespacedCustomObject({
      group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace: namespace.name,
      body: { apiVersion: `${LAMBDA_GROUP}/${LAMBDA_VERSION}`, kind: LAMBDA_KIND, metadata: { name }, spec: { source: { inline: 'export default () => new Response("")' }, stateTables } },
    });
  }
  const orders = createStateStore(redis).table(namespace.name, 'orders');
  for (let i = 1; i <= 5; i++) await orders.put(`order/${i}`, { total: i * 10 });
  await orders.put('other', 'not an order', { ttlSeconds: 3600 });
});
afterAll(async () => {
  await admin?.stop();
  redis?.disconnect();
  adminRedis?.disconnect();
  await Promise.all([redisServer?.stop(), namespace?.delete()]);
});

function kublambda(...args: string[]) {
  return execa(process.execPath, [main, 'state', ...args, '--platform-namespace', admin.platformNamespace], {
    reject: false,
    env: { KUBECONFIG: process.env.KUBECONFIG },
    extendEnv: false,
  });
}

describe('kublambda state', () => {
  it('pages through a declared table, printing the command for the next page', async () => {
    const first = await kublambda('shop', 'orders', '-n', namespace.name, '--prefix', 'order/', '--limit', '3');
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const lines = first.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'KEY      VERSION  EXPIRES  VALUE',
      expect.stringMatching(/^order\/1 +\d+ +- +\{"total":10\}$/),
      expect.stringMatching(/^order\/2 +\d+ +- +\{"total":20\}$/),
      expect.stringMatching(/^order\/3 +\d+ +- +\{"total":30\}$/),
    ]);
    const next = lines.at(-1)!.match(/^more: kublambda state shop orders -n \S+ --prefix order\/ --limit 3 --cursor (\S+)$/);
    expect(next).not.toBeNull();

    const second = await kublambda('shop', 'orders', '-n', namespace.name, '--prefix', 'order/', '--limit', '3', '--cursor', next![1]!, '-o', 'json');
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({
      entries: [
        { key: 'order/4', value: { total: 40 }, version: expect.any(Number) },
        { key: 'order/5', value: { total: 50 }, version: expect.any(Number) },
      ],
    });
  });

  it('shows expiry times', async () => {
    const result = await kublambda('shop', 'orders', '-n', namespace.name, '--prefix', 'other');
    expect(result.stdout).toMatch(/^other +\d+ +\d{4}-\d\d-\d\dT[\d:.]+Z +"not an order"$/m);
  });

  it('refuses a table the lambda does not declare, naming those it does', async () => {
    const result = await kublambda('shop', 'secrets', '-n', namespace.name);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(`kublambda state: Lambda ${namespace.name}/shop does not declare the state table "secrets": it declares "orders", "carts"`);
    expect((await kublambda('plain', 'orders', '-n', namespace.name)).stderr).toMatch('it declares none (spec.stateTables)');
  });

  it('says when the Lambda does not exist', async () => {
    const result = await kublambda('missing', 'orders', '-n', namespace.name);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(`kublambda state: Lambda "missing" not found in namespace "${namespace.name}"`);
  });

  it('says where no api-controller runs', async () => {
    const result = await execa(process.execPath, [main, 'state', 'shop', 'orders', '-n', namespace.name, '--platform-namespace', namespace.name], {
      reject: false,
      env: { KUBECONFIG: process.env.KUBECONFIG },
      extendEnv: false,
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `kublambda state: no Ready pod labelled app.kubernetes.io/name=kublambda,app.kubernetes.io/component=api-controller with a container port named "admin" in ${namespace.name}: is the platform installed (helm install, or npm run up), and api-controller running with ADMIN_PORT set?`,
    );
  });

  it('refuses a bad cursor with the store\'s own message', async () => {
    const result = await kublambda('shop', 'orders', '-n', namespace.name, '--cursor', '!!');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^kublambda state: api-controller's admin API answered 400: .*cursor/);
  });
});
