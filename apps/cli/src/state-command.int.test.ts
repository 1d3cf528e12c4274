// `kublambda state` as a user runs it: the command in a process of its own, reading a Lambda
// from the shared test API server and the table from a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import type { Redis } from 'ioredis';
import type { RedisConnection } from '@kublambda/redis-connection';
import { LAMBDA_GROUP, LAMBDA_KIND, LAMBDA_PLURAL, LAMBDA_VERSION } from '@kublambda/crd-types';
import { createTestNamespace, startRedis, testKubeConfig, type RedisServer } from '@kublambda/dev-servers';
import { connectStateRedis, createStateStore } from '@kublambda/state-tables';

const main = path.join(import.meta.dirname, 'main.ts');

let redisServer: RedisServer;
let redis: RedisConnection;
let namespace: { name: string; delete(): Promise<void> };

beforeAll(async () => {
  const kubeConfig = testKubeConfig();
  [redisServer, namespace] = await Promise.all([startRedis(), createTestNamespace(kubeConfig, 'cli-state')]);
  // Tables are written as the runner does it; the command reads them with the read-only user "cli".
  redis = await connectStateRedis(redisServer.urlFor('runner'), () => {});
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
  redis?.disconnect();
  await Promise.all([redisServer?.stop(), namespace?.delete()]);
});

function kublambda(...args: string[]) {
  return execa(process.execPath, [main, 'state', ...args], {
    reject: false,
    env: { KUBECONFIG: process.env.KUBECONFIG, REDIS_URL: redisServer.urlFor('cli') },
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

  it('reports an unreachable Redis clearly', async () => {
    const result = await execa(process.execPath, [main, 'state', 'shop', 'orders', '-n', namespace.name], {
      reject: false,
      env: { KUBECONFIG: process.env.KUBECONFIG, REDIS_URL: 'redis://127.0.0.1:1' },
      extendEnv: false,
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^kublambda state: connecting to the state store at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  });
});
