// The platform on a Redis Cluster: three masters with a replica each, on loopback (Debian's
// redis-server in cluster mode). api-controller, builder and runner run from source as local
// processes against the real API server, S3 and that cluster (no kubelet runs here); every
// service reaches the cluster through its own user in a redis+cluster:// URL, and writes that
// must survive a failover wait for a replica (REDIS_WRITE_REPLICAS=1).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { waitUntil } from '@kublambda/dev-servers';
import { ROUTES_KEY } from '@kublambda/route-table';
import { tableKeys } from '@kublambda/state-tables';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

let platform: LambdaPlatform;
let runner: string;
const confirmed = { REDIS_WRITE_REPLICAS: '1' };

beforeAll(async () => {
  platform = await startLambdaPlatform('cluster', { redisCluster: true });
  await platform.startBuilder();
  await platform.startController(undefined, confirmed);
  runner = await platform.startRunner(undefined, confirmed);
}, 90_000);
afterAll(async () => {
  await platform?.stop();
});

function call(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${runner}${path}`, { method, headers: { host: 'lambdas.test' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

const answers = (path: string, check: (body: string) => boolean) =>
  waitUntil(`${path} to answer`, async () => {
    const response = await call(path).catch(() => undefined);
    return response?.status === 200 && check(response.body);
  }, { timeoutMs: 30_000, describe: async () => JSON.stringify(await call(path).catch(String)) });

/** A lambda that increments `counter` in its table `count` by 1, `n` times at once, and answers with every value it got. */
const counter = {
  source: {
    inline: `export default async (request: Request, context) => {
      const n = Number(new URL(request.url).searchParams.get('n') ?? '1');
      const table = context.state.table('count');
      if (request.method === 'GET') return Response.json(await table.get('counter'));
      const values = await Promise.all(Array.from({ length: n }, () => table.increment('counter', 1)));
      return Response.json(values);
    };`,
  },
  stateTables: ['count'],
};

describe('the platform on a Redis Cluster', () => {
  it('builds, routes and serves lambdas, and 1,000 concurrent increments of a state table are exact', async () => {
    const base = `/${platform.namespace}`;
    await platform.applyAll([
      ['hello', { source: { inline: 'export default () => new Response("hello from the cluster")' }, triggers: { http: { path: `${base}/hello` } } }],
      ['counter', { ...counter, triggers: { http: { path: `${base}/counter` } } }],
    ]);
    await platform.waitFor('hello', 'Ready', isReady);
    await platform.waitFor('counter', 'Ready', isReady);
    await answers(`${base}/hello`, (body) => body === 'hello from the cluster');

    // Four requests at once, 250 increments each, on the runner's workers.
    const replies = await Promise.all(Array.from({ length: 4 }, () => call(`${base}/counter?n=250`, 'POST')));
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200]);
    const values = replies.flatMap((reply) => JSON.parse(reply.body) as number[]).sort((a, b) => a - b);
    // Each increment saw its own value: 1 to 1,000, none twice, none skipped.
    expect(values).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(JSON.parse((await call(`${base}/counter`)).body)).toMatchObject({ key: 'counter', value: 1000 });

    // The route records, the build queue and the table are spread over the cluster's slots.
    const keys = await platform.redisKeys();
    expect(keys).toEqual(expect.arrayContaining([ROUTES_KEY, tableKeys(platform.namespace, 'count').index]));
    expect(keys.some((key) => key.startsWith('{kublambda}:builds:'))).toBe(true);
  }, 120_000);

  it('loses no route and no acknowledged state write when a master is killed and its replica takes over', async () => {
    const cluster = platform.redisCluster!;
    const base = `/${platform.namespace}`;
    await platform.apply('survivor', { ...counter, triggers: { http: { path: `${base}/survivor` } } });
    await platform.waitFor('survivor', 'Ready', isReady);
    await answers(`${base}/survivor`, (body) => body === 'null');
    const routesBefore = Object.keys(await platform.rawRoutes()).sort();

    // Kill the master holding the table (and the one holding the routes, if another), while
    // increments keep coming; count the ones acknowledged with 200.
    const tableMaster = await cluster.masterOf(tableKeys(platform.namespace, 'count').index);
    const routesMaster = await cluster.masterOf(ROUTES_KEY);
    let acknowledged = 0;
    let attempted = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        attempted++;
        const reply = await call(`${base}/survivor?n=1`, 'POST').catch(() => undefined);
        if (reply?.status === 200) acknowledged++;
      }
    })();
    await waitUntil('some increments before the failure', () => acknowledged >= 20);
    await tableMaster.kill();
    if (routesMaster !== tableMaster) await routesMaster.kill();
    await cluster.waitUntilHealthy(60_000);
    const afterFailover = acknowledged;
    await waitUntil('increments acknowledged again after the failover', () => acknowledged >= afterFailover + 20, { timeoutMs: 30_000 });
    stop = true;
    await load;

    // Every acknowledged increment is there; one whose reply was lost may be there too.
    const final = JSON.parse((await call(`${base}/survivor`)).body) as { value: number };
    expect(final.value).toBeGreaterThanOrEqual(acknowledged);
    expect(final.value).toBeLessThanOrEqual(attempted);
    expect(Object.keys(await platform.rawRoutes()).sort()).toEqual(routesBefore);
    await answers(`${base}/hello`, (body) => body === 'hello from the cluster');

    // A lambda published after the failover reaches the runner through the new master.
    await platform.apply('after-failover', { source: { inline: 'export default () => new Response("after")' }, triggers: { http: { path: `${base}/after` } } });
    await platform.waitFor('after-failover', 'Ready', isReady);
    await answers(`${base}/after`, (body) => body === 'after');

    // The killed nodes come back as replicas of the masters that took over.
    await tableMaster.start();
    await routesMaster.start();
    await cluster.waitUntilHealthy(60_000);
  }, 240_000);
});
