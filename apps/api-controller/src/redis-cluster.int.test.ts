// The platform on a Redis Cluster: three masters with a replica each, on loopback (Debian's
// redis-server in cluster mode). api-controller, builder and runner run from source as local
// processes against the real API server, S3 and that cluster (no kubelet runs here); every
// service reaches the cluster through its own user in a redis+cluster:// URL, and writes that
// must survive a failover wait for a replica (REDIS_WRITE_REPLICAS=1).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { freePort, kubectl, startDeploymentLocally, waitUntil, type LocalDeployment } from '@kublambda/dev-servers';
import { ROUTES_KEY } from '@kublambda/route-table';
import { tableKeys } from '@kublambda/state-tables';
import { watcherKeys } from '@kublambda/watch-triggers';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

let platform: LambdaPlatform;
let runner: string;
const watchers: LocalDeployment[] = [];
const confirmed = { REDIS_WRITE_REPLICAS: '1' };

beforeAll(async () => {
  platform = await startLambdaPlatform('cluster', { redisCluster: true });
  await platform.startBuilder();
  await platform.startController(undefined, confirmed);
  runner = await platform.startRunner(undefined, confirmed);
}, 90_000);
afterAll(async () => {
  for (const watcher of watchers) await watcher.process.stop();
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

/** A lambda that increments `counter` in its table by 1, `n` times at once, and answers with every value it got. */
const counter = (tableName: string) => ({
  source: {
    inline: `export default async (request: Request, context) => {
      const n = Number(new URL(request.url).searchParams.get('n') ?? '1');
      const table = context.state.table('${tableName}');
      if (request.method === 'GET') return Response.json(await table.get('counter'));
      const values = await Promise.all(Array.from({ length: n }, () => table.increment('counter', 1)));
      return Response.json(values);
    };`,
  },
  stateTables: [tableName],
});

describe('the platform on a Redis Cluster', () => {
  it('builds, routes and serves lambdas, and 1,000 concurrent increments of a state table are exact', async () => {
    const base = `/${platform.namespace}`;
    await platform.applyAll([
      ['hello', { source: { inline: 'export default () => new Response("hello from the cluster")' }, triggers: { http: { path: `${base}/hello` } } }],
      ['counter', { ...counter('count'), triggers: { http: { path: `${base}/counter` } } }],
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
    // A table on the master that holds the routes, so one failure puts both at risk (two
    // masters of three down would leave the cluster without the majority a failover needs).
    const routesMaster = await cluster.masterOf(ROUTES_KEY);
    let tableName = '';
    for (let i = 0; !tableName; i++) {
      if ((await cluster.masterOf(tableKeys(platform.namespace, `survived-${i}`).index)) === routesMaster) tableName = `survived-${i}`;
    }
    await platform.apply('survivor', { ...counter(tableName), triggers: { http: { path: `${base}/survivor` } } });
    await platform.waitFor('survivor', 'Ready', isReady);
    await answers(`${base}/survivor`, (body) => body === 'null');
    const routesBefore = Object.keys(await platform.rawRoutes()).sort();

    // Kill that master while increments keep coming; count the ones acknowledged with 200.
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
    await routesMaster.kill();
    await cluster.waitUntilHealthy(60_000);
    // The promoted replica has no replica of its own until the killed node returns as one:
    // until then a write cannot be confirmed (REDIS_WRITE_REPLICAS=1), and the lambda is told
    // the store is unavailable rather than that its write is safe.
    await routesMaster.start();
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

    // A lambda published after the failover reaches the runner through the new master.
    await platform.apply('after-failover', { source: { inline: 'export default () => new Response("after")' }, triggers: { http: { path: `${base}/after` } } });
    await platform.waitFor('after-failover', 'Ready', isReady);
    await answers(`${base}/after`, (body) => body === 'after');
  }, 240_000);

  it('delivers resource events through an event-watcher whose user, lease and checkpoint are on the cluster', async () => {
    const base = `/${platform.namespace}`;
    const recorder = `import { readResourceEvent } from '@kublambda/lambda-api';
      export default async (request: Request, context) => {
        const seen = context.state.table('seen');
        if (request.method === 'GET') return Response.json((await seen.list()).entries.map((entry) => entry.value));
        const event = await readResourceEvent(request);
        await seen.put(event.id, { type: event.type, name: event.object.metadata.name });
        return new Response('recorded');
      };`;
    await platform.apply('on-config', {
      source: { inline: recorder },
      stateTables: ['seen'],
      triggers: { http: { path: `${base}/on-config` }, watch: [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=cluster-test', events: ['ADDED'] }] },
    });
    await platform.waitFor('on-config', 'Ready', isReady, 90_000);
    // No pod runs here: the watcher runs as a local process made from the Deployment api-controller wrote.
    const watcher = await startDeploymentLocally({
      kubeConfig: platform.kubeConfig,
      namespace: platform.namespace,
      name: 'kublambda-watch-on-config',
      app: 'event-watcher',
      env: { RUNNER_URL: runner, HOST: '127.0.0.1', PORT: String(await freePort()), RETRY_INITIAL_MS: '50', RETRY_MAX_MS: '500' },
      logDir: platform.logDir,
      processName: 'watcher-on-config',
    });
    watchers.push(watcher);
    expect(watcher.env.REDIS_URL).toMatch(/^redis\+cluster:\/\/watcher\./);
    await waitUntil('the watcher to be ready', async () => (await fetch(`http://127.0.0.1:${watcher.env.PORT}/readyz`).catch(() => undefined))?.ok, { timeoutMs: 60_000 });

    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'labelled', namespace: platform.namespace, labels: { app: 'cluster-test' } }, data: { a: '1' } };
    expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(configMap) })).exitCode).toBe(0);
    await answers(`${base}/on-config`, (body) => (JSON.parse(body) as Array<{ name: string }>).some((event) => event.name === 'labelled'));
    const keys = await platform.redisKeys();
    const watcherKeysOf = watcherKeys({ namespace: platform.namespace, name: 'on-config' });
    expect(keys).toEqual(expect.arrayContaining([watcherKeysOf.lease, watcherKeysOf.triggerIds]));
  }, 180_000);
});
