// api-controller's admin API on a real redis-server, as api-controller's own Redis user: dead
// letters as the event-watcher leaves them, redelivered to a local HTTP server standing in for
// the runner (it records what it gets), and state tables written as the runner writes them.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '@kublambda/dev-servers';
import type { RedisConnection } from '@kublambda/redis-connection';
import { ROUTES_KEY } from '@kublambda/route-table';
import { connectStateRedis, createStateStore } from '@kublambda/state-tables';
import { watcherKeys, type DeadLetter } from '@kublambda/watch-triggers';
import { ADMIN_API_PATH, createAdminApi } from './admin-api.ts';
import { redisAdminData } from './redis-admin-data.ts';

let redisServer: RedisServer;
let admin: Redis;
let controller: RedisConnection;
let runner: Server;
let runnerAnswer = 200;
const received: Array<{ url: string; headers: IncomingMessage['headers']; body: string }> = [];
let api: Server;
let base: string;

const lambda = { namespace: 'shop', name: 'orders' };
const keys = watcherKeys(lambda);

function deadLetter(id: string, overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    id,
    type: 'io.kublambda.resource.modified',
    subject: 'shop/config',
    triggerIndex: 0,
    attempts: 5,
    lastError: 'HTTP 500: boom',
    deadAt: '2026-12-02T10:00:00.000Z',
    object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config', namespace: 'shop', uid: 'u1', resourceVersion: '7' }, data: { a: '1' } },
    source: 'https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps',
    time: '2026-12-02T09:59:00.000Z',
    ...overrides,
  };
}

beforeAll(async () => {
  redisServer = await startRedis();
  admin = new Redis(redisServer.adminUrl, { maxRetriesPerRequest: 0 });
  controller = await connectStateRedis(redisServer.urlFor('api-controller'), () => {});
  runner = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push({ url: request.url!, headers: request.headers, body });
      response.statusCode = runnerAnswer;
      response.end(runnerAnswer >= 400 ? 'not now' : 'ok');
    });
  });
  runner.listen(0, '127.0.0.1');
  await once(runner, 'listening');
  const runnerUrl = `http://127.0.0.1:${(runner.address() as AddressInfo).port}`;
  api = express().use(ADMIN_API_PATH, createAdminApi(redisAdminData(controller, controller, runnerUrl))).listen(0, '127.0.0.1');
  await once(api, 'listening');
  base = `http://127.0.0.1:${(api.address() as AddressInfo).port}${ADMIN_API_PATH}`;
});

afterAll(async () => {
  api?.close();
  runner?.close();
  controller?.disconnect();
  admin?.disconnect();
  await redisServer?.stop();
});

beforeEach(async () => {
  received.length = 0;
  runnerAnswer = 200;
  await admin.flushall();
  // As the watcher records them: newest first (LPUSH).
  for (const letter of [deadLetter('u1/7'), deadLetter('u2/deleted', { type: 'io.kublambda.resource.deleted', subject: 'shop/gone' })]) await admin.lpush(keys.deadLetters, JSON.stringify(letter));
  await admin.hset(ROUTES_KEY, 'shop/orders', JSON.stringify({ key: 'shop/orders', namespace: 'shop', name: 'orders', pathPrefix: '/shop/orders', host: 'orders.example.com' }));
});

const lettersUrl = () => `${base}/namespaces/shop/lambdas/orders/dead-letters`;
const retry = (id: string) => fetch(`${lettersUrl()}/${encodeURIComponent(id)}/retry`, { method: 'POST' });

describe('admin API: dead letters', () => {
  it('lists them newest first', async () => {
    const response = await fetch(lettersUrl());
    expect(response.status).toBe(200);
    expect(((await response.json()) as { deadLetters: DeadLetter[] }).deadLetters.map((letter) => letter.id)).toEqual(['u2/deleted', 'u1/7']);
  });

  it('redelivers one as the same CloudEvent to the lambda, and removes it once taken', async () => {
    const response = await retry('u1/7');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ retried: { id: 'u1/7' }, status: 200 });
    expect(received).toHaveLength(1);
    expect(received[0]!.url).toBe('/shop/orders');
    expect(received[0]!.headers).toMatchObject({ host: 'orders.example.com', 'ce-id': 'u1/7', 'ce-type': 'io.kublambda.resource.modified', 'ce-subject': 'shop/config', 'ce-time': '2026-12-02T09:59:00.000Z', 'ce-kublambdatrigger': '0' });
    expect(JSON.parse(received[0]!.body)).toMatchObject({ kind: 'ConfigMap', data: { a: '1' } });
    expect((await admin.lrange(keys.deadLetters, 0, -1)).map((raw) => (JSON.parse(raw) as DeadLetter).id)).toEqual(['u2/deleted']);
  });

  it('keeps it when the lambda refuses it again, saying why', async () => {
    runnerAnswer = 503;
    const response = await retry('u2/deleted');
    expect(response.status).toBe(502);
    expect(((await response.json()) as { error: string }).error).toBe('the lambda did not take the event (HTTP 503: not now); the dead letter stays');
    expect(received[0]!.headers['ce-type']).toBe('io.kublambda.resource.deleted');
    expect(await admin.llen(keys.deadLetters)).toBe(2);
  });

  it('says when there is no such dead letter, or no route to deliver to', async () => {
    expect((await retry('u9/1')).status).toBe(404);
    await admin.hdel(ROUTES_KEY, 'shop/orders');
    const response = await retry('u1/7');
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: string }).error).toBe('shop/orders has no route (deleted, or not built yet): nothing to deliver to; the dead letter stays');
    expect(await admin.llen(keys.deadLetters)).toBe(2);
    expect(received).toEqual([]);
  });

  it('refuses names that are not Kubernetes names', async () => {
    for (const path of ['/namespaces/Shop/lambdas/orders/dead-letters', '/namespaces/shop/lambdas/a*b/dead-letters', '/namespaces/sh.op/lambdas/orders/dead-letters']) {
      const response = await fetch(`${base}${path}`);
      expect([path, response.status]).toEqual([path, 400]);
    }
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  });
});

describe('admin API: state tables', () => {
  it('pages through a table written as the runner writes it', async () => {
    const runnerRedis = await connectStateRedis(redisServer.urlFor('runner'), () => {});
    try {
      const table = createStateStore(runnerRedis).table('shop', 'carts');
      for (let i = 1; i <= 3; i++) await table.put(`cart/${i}`, { items: i });
    } finally {
      runnerRedis.disconnect();
    }
    const first = (await (await fetch(`${base}/namespaces/shop/tables/carts?limit=2`)).json()) as { entries: Array<{ key: string; value: unknown }>; cursor?: string };
    expect(first.entries.map((entry) => [entry.key, entry.value])).toEqual([['cart/1', { items: 1 }], ['cart/2', { items: 2 }]]);
    const second = (await (await fetch(`${base}/namespaces/shop/tables/carts?limit=2&cursor=${encodeURIComponent(first.cursor!)}`)).json()) as { entries: Array<{ key: string }>; cursor?: string };
    expect(second.entries.map((entry) => entry.key)).toEqual(['cart/3']);
    expect(second.cursor).toBeUndefined();
  });

  it('refuses a bad limit, cursor or table name with 400', async () => {
    for (const query of ['tables/carts?limit=0', 'tables/carts?limit=abc', 'tables/carts?limit=1&limit=2', 'tables/carts?cursor=!!', 'tables/Bad%20Name']) {
      const response = await fetch(`${base}/namespaces/shop/${query}`);
      expect([query, response.status]).toEqual([query, 400]);
      expect(((await response.json()) as { error: string }).error).toBeTruthy();
    }
  });
});
