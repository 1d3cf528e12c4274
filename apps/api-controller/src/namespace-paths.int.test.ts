// Paths and hosts belong to namespaces, end to end: api-controller, builder and a runner run as
// local processes against the real API server, Redis and S3. Two namespaces, A (the platform's)
// and B, each reconciled by an api-controller of its own (test controllers watch one namespace)
// that share one Redis, as replicas share it in a cluster. Requests go straight to the runner
// with the path an Ingress would forward.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { createTestNamespace, kubectl, waitUntil, type ManagedProcess } from '@kublambda/dev-servers';
import { condition, isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

let platform: LambdaPlatform;
let namespaceB: { name: string; delete(): Promise<void> };
let a: string;
let b: string;
let lambdasB: ReturnType<LambdaPlatform['lambdasIn']>;
let controllers: ManagedProcess[] = [];
let runner: string;

/** One api-controller per namespace, with the same platform configuration. */
async function startControllers(label: string, extraEnv: Record<string, string> = {}): Promise<void> {
  await Promise.all(controllers.map((controller) => controller.stop()));
  controllers = await Promise.all([
    platform.startController(`${label}-a`, extraEnv),
    platform.startController(`${label}-b`, { WATCH_NAMESPACE: b, LEADER_ELECTION_NAMESPACE: b, ...extraEnv }),
  ]);
}

beforeAll(async () => {
  platform = await startLambdaPlatform('paths');
  namespaceB = await createTestNamespace(platform.kubeConfig, 'paths-b');
  a = platform.namespace;
  b = namespaceB.name;
  lambdasB = platform.lambdasIn(b);
  await platform.startBuilder();
  await startControllers('controller');
  runner = await platform.startRunner();
}, 90_000);
afterAll(async () => {
  await platform?.stop();
  await namespaceB?.delete();
});

/** A request to the runner as an ingress controller would forward it, with credentials. */
function callRunner(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${runner}${path}`, { headers: { host: 'lambdas.test', authorization: 'Bearer users-token' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    request.on('error', reject);
  });
}

const answers = (path: string, body: string) =>
  waitUntil(`${path} to answer "${body}"`, async () => {
    const response = await callRunner(path);
    return response.status === 200 && response.body === body;
  }, { describe: async () => JSON.stringify(await callRunner(path)) });

/** Answers "<who> <path below the prefix> <Authorization header>": where a request went, credentials included. */
const echo = (who: string) => ({
  inline: `export default async (request: Request) => new Response(\`${who} \${new URL(request.url).pathname} \${request.headers.get('authorization')}\`)`,
});

const isRefused = (lambda: Parameters<typeof isReady>[0]) =>
  lambda?.status?.observedGeneration === lambda?.metadata.generation && condition(lambda, 'Routed')?.status === 'False';

/** A's lambda `greeter` holds /hello. */
async function greeterHoldsHello(): Promise<void> {
  await platform.apply('greeter', { source: echo('A'), triggers: { http: { path: '/hello' } } });
  await platform.waitFor('greeter', 'Ready', isReady);
}

/** B's `root` holds "/", under which every new path of A would be refused: it goes when a test is done with it. */
async function removeRoot(): Promise<void> {
  await lambdasB.remove('root');
  await lambdasB.waitFor('root', 'gone', (l) => l === undefined);
}

async function ingressExists(namespace: string, name: string): Promise<boolean> {
  const result = await kubectl(['get', 'ingress', name, '-n', namespace, '--ignore-not-found', '-o', 'name']);
  if (result.exitCode !== 0) throw new Error(`kubectl get ingress ${name}: ${result.stderr}`);
  return result.stdout.trim() !== '';
}

describe('paths across namespaces', () => {
  it('refuses a lambda of another namespace a path below a held one, and the traffic keeps going to the holder', async () => {
    await greeterHoldsHello();
    await lambdasB.apply('admin', { source: echo('B'), triggers: { http: { path: '/hello/admin' } } });
    const refused = await lambdasB.waitFor('admin', 'Routed=False', isRefused);
    // The holder's namespace, not its name, code or env.
    expect(condition(refused, 'Routed')).toMatchObject({ reason: 'PathConflict', message: `path /hello/admin (any host) is below /hello, held by a lambda of namespace ${a}` });
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False', reason: 'PathConflict' });
    expect((await platform.routes()).map((route) => route.key)).not.toContain(`${b}/admin`);
    expect(await ingressExists(b, 'kublambda-admin')).toBe(false);
    // B's lambda is built (it would be served the moment it were routed), and still gets nothing.
    await lambdasB.waitFor('admin', 'built', (l) => condition(l, 'Built')?.status === 'True');
    await answers('/hello/admin/users', 'A /admin/users Bearer users-token');
  }, 90_000);

  it('lets a lambda of another namespace take a path above a held one, without taking the holder\'s traffic', async () => {
    await greeterHoldsHello();
    await lambdasB.apply('root', { source: echo('B root'), triggers: { http: { path: '/' } } });
    await lambdasB.waitFor('root', 'Ready', isReady);
    await answers('/elsewhere', 'B root /elsewhere Bearer users-token');
    await answers('/hello/admin/users', 'A /admin/users Bearer users-token');
    await removeRoot();
  }, 90_000);

  it('keeps /<namespace>/ for its namespace: refused to others, open to it under a path another namespace holds above', async () => {
    await lambdasB.apply('squatter', { source: echo('B squatter'), triggers: { http: { path: `/${a}/x` } } });
    const refused = await lambdasB.waitFor('squatter', 'Routed=False', isRefused);
    expect(condition(refused, 'Routed')).toMatchObject({ reason: 'PathConflict', message: `path /${a}/x (any host) belongs to namespace ${a}` });

    // B holds "/" (above every path); A's default path /<A>/<name> is A's all the same.
    await lambdasB.apply('root', { source: echo('B root'), triggers: { http: { path: '/' } } });
    await lambdasB.waitFor('root', 'Ready', isReady);
    await platform.apply('plain', { source: echo('A plain') });
    await platform.waitFor('plain', 'Ready', isReady);
    await answers(`/${a}/plain/x`, 'A plain /x Bearer users-token');
    expect((await platform.routes()).map((route) => route.key)).not.toContain(`${b}/squatter`);
    await removeRoot();
  }, 90_000);

  it('routes the refused lambda once the holder lets go', async () => {
    await platform.apply('parent', { source: echo('A parent'), triggers: { http: { path: '/parent' } } });
    await platform.waitFor('parent', 'Ready', isReady);
    await lambdasB.apply('child', { source: echo('B child'), triggers: { http: { path: '/parent/child' } } });
    await lambdasB.waitFor('child', 'PathConflict', (l) => condition(l, 'Routed')?.reason === 'PathConflict');
    await answers('/parent/child/x', 'A parent /child/x Bearer users-token');

    await platform.remove('parent');
    await lambdasB.waitFor('child', 'Ready', isReady);
    await answers('/parent/child/x', 'B child /x Bearer users-token');
  }, 90_000);

  // Last: the controllers run with the grant from here on.
  it('gives the path to the namespace platform configuration grants it, with its traffic, and refuses the others there', async () => {
    await greeterHoldsHello();
    await lambdasB.apply('admin', { source: echo('B'), triggers: { http: { path: '/hello/admin' } } });
    await lambdasB.waitFor('admin', 'Routed=False', isRefused);

    await startControllers('granting', { ROUTE_GRANTS: JSON.stringify({ [b]: ['/hello/admin'] }) });
    await lambdasB.waitFor('admin', 'Ready', isReady);
    await answers('/hello/admin/users', 'B /users Bearer users-token');
    await answers('/hello/other', 'A /other Bearer users-token');

    await platform.apply('intruder', { source: echo('A intruder'), triggers: { http: { path: '/hello/admin/x' } } });
    const refused = await platform.waitFor('intruder', 'Routed=False', isRefused);
    expect(condition(refused, 'Routed')).toMatchObject({
      reason: 'PathConflict',
      message: `path /hello/admin/x (any host) belongs to namespace ${b}: platform configuration grants it /hello/admin`,
    });
    await answers('/hello/admin/x', 'B /x Bearer users-token');
  }, 120_000);
});
