// HTTP triggers end to end: api-controller, builder and runner run as local processes against
// the real API server (with kube-controller-manager, so owner references are garbage-collected
// for real), Redis and S3. No ingress controller runs here: requests go straight to the runner
// with the path (and Host header) the Ingress would forward, which is all an ingress
// controller adds in front of the runner Service.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { createTestNamespace, kubectl, waitUntil } from '@kublambda/dev-servers';
import { condition, isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

let platform: LambdaPlatform;
let platformNamespace: { name: string; delete(): Promise<void> };
let runner: string;
const ANNOTATIONS = { 'nginx.ingress.kubernetes.io/proxy-body-size': '32m', 'example.com/team': 'lambdas' };

beforeAll(async () => {
  platform = await startLambdaPlatform('http');
  // The runner Service lives in a namespace of its own, as kublambda-system would in a cluster.
  platformNamespace = await createTestNamespace(platform.kubeConfig, 'http-platform');
  await platform.startBuilder();
  // No EXTERNAL_BASE_URL here: URLs come from the lambda's host or the Ingress's load balancer.
  await platform.startController(undefined, {
    PLATFORM_NAMESPACE: platformNamespace.name,
    INGRESS_CLASS_NAME: 'kublambda-test',
    INGRESS_ANNOTATIONS: JSON.stringify(ANNOTATIONS),
  });
  runner = await platform.startRunner();
}, 90_000);
afterAll(async () => {
  await platform?.stop();
  await platformNamespace?.delete();
});

/** An object as the API server holds it, read without client-node's typed models. */
async function read(kind: 'ingress' | 'service', name: string, namespace = platform.namespace): Promise<Record<string, any> | undefined> {
  const result = await kubectl(['get', kind, name, '-n', namespace, '-o', 'json', '--ignore-not-found']);
  if (result.exitCode !== 0) throw new Error(`kubectl get ${kind} ${name}: ${result.stderr}`);
  return result.stdout.trim() ? JSON.parse(result.stdout) : undefined;
}

/** A request to the runner as an ingress controller would forward it. */
function callRunner(path: string, host = 'lambdas.test'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${runner}${path}`, { headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    request.on('error', reject);
  });
}

const answers = (path: string, body: string, host?: string) =>
  waitUntil(`${host ?? ''}${path} to answer "${body}"`, async () => {
    const response = await callRunner(path, host);
    return response.status === 200 && response.body === body;
  }, { describe: async () => JSON.stringify(await callRunner(path, host)) });

const hello = (text: string) => ({ inline: `export default async (request: Request) => new Response(\`${text} \${new URL(request.url).pathname}\`)` });

describe('a Lambda with an HTTP trigger', () => {
  it('gets an Ingress with the right rules, a Service to the runner, and answers through the runner', async () => {
    await platform.apply('greeter', { source: hello('hi from greeter'), triggers: { http: { path: '/greet' } } });
    const lambda = await platform.waitFor('greeter', 'Ready', isReady);
    expect(condition(lambda, 'Routed')).toMatchObject({ status: 'True', reason: 'Published', message: expect.stringContaining('through Ingress kublambda-greeter') });

    const ingress = await read('ingress', 'kublambda-greeter');
    expect(ingress!.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'kublambda-api-controller', 'kublambda.io/lambda': 'greeter' });
    expect(ingress!.metadata.annotations).toMatchObject(ANNOTATIONS);
    expect(ingress!.metadata.ownerReferences).toEqual([
      { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', name: 'greeter', uid: lambda!.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(ingress!.spec).toEqual({
      ingressClassName: 'kublambda-test',
      rules: [{ http: { paths: [{ path: '/greet', pathType: 'Prefix', backend: { service: { name: 'kublambda-greeter', port: { number: 80 } } } }] } }],
    });
    const managed = JSON.parse((await kubectl(['get', 'ingress', 'kublambda-greeter', '-n', platform.namespace, '-o', 'json', '--show-managed-fields'])).stdout);
    expect(managed.metadata.managedFields.map((f: { manager: string; operation: string }) => `${f.manager}/${f.operation}`)).toEqual(['kublambda-api-controller/Apply']);

    const service = await read('service', 'kublambda-greeter');
    expect(service!.spec).toMatchObject({ type: 'ExternalName', externalName: `kublambda-runner.${platformNamespace.name}.svc.cluster.local`, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });
    expect(service!.metadata.ownerReferences).toEqual(ingress!.metadata.ownerReferences);
    const runnerService = await read('service', 'kublambda-runner', platformNamespace.name);
    expect(runnerService!.spec).toMatchObject({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'kublambda', 'app.kubernetes.io/component': 'runner' },
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    });

    // No ingress controller reports an address yet, and no host or base URL is configured.
    expect(lambda!.status!.url).toBeUndefined();
    await answers('/greet/world', 'hi from greeter /world');
  });

  it('takes its URL from the address the ingress controller reports, shown by kubectl get lam', async () => {
    const status = { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } };
    const patched = await kubectl(['patch', 'ingress', 'kublambda-greeter', '-n', platform.namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    expect(patched.stderr).toBe('');
    const lambda = await platform.waitFor('greeter', 'given a URL', (l) => l?.status?.url !== undefined);
    expect(lambda!.status!.url).toBe('http://203.0.113.7/greet');
    const table = await kubectl(['get', 'lam', 'greeter', '-n', platform.namespace]);
    expect(table.stdout.split('\n')[0]).toMatch(/NAME\s+READY\s+URL\s+IMAGE\s+AGE/);
    expect(table.stdout.split('\n')[1]).toMatch(/^greeter\s+True\s+http:\/\/203\.0\.113\.7\/greet\s/);
  });

  it('does not let users set status.url', async () => {
    // The status subresource ignores status in updates of the main resource.
    const patched = await kubectl(['patch', 'lam', 'greeter', '-n', platform.namespace, '--type=merge', '-p', '{"status":{"url":"http://evil.example.com"}}']);
    expect(patched.exitCode).toBe(0);
    expect((await platform.get('greeter'))!.status!.url).toBe('http://203.0.113.7/greet');
  });

  it('serves a host with TLS, and the URL says https', async () => {
    await platform.apply('secure', { source: hello('secure'), triggers: { http: { host: 'secure.example.com', path: '/', tlsSecretName: 'secure-tls', ingressClassName: 'internal' } } });
    const lambda = await platform.waitFor('secure', 'Ready', isReady);
    expect(lambda!.status!.url).toBe('https://secure.example.com/');
    const ingress = await read('ingress', 'kublambda-secure');
    expect(ingress!.spec).toEqual({
      ingressClassName: 'internal',
      tls: [{ hosts: ['secure.example.com'], secretName: 'secure-tls' }],
      rules: [{ host: 'secure.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'kublambda-secure', port: { number: 80 } } } }] } }],
    });
    await answers('/any/thing', 'secure /any/thing', 'secure.example.com');
    // Other hosts do not reach it.
    expect((await callRunner('/any/thing', 'other.example.com')).status).toBe(404);
  });

  it('refuses a second lambda the same path, keeps the first working, and hands the path over when the first lets go', async () => {
    await platform.apply('first', { source: hello('first'), triggers: { http: { path: '/shared' } } });
    await platform.waitFor('first', 'Ready', isReady);
    await platform.apply('second', { source: hello('second'), triggers: { http: { path: '/shared/' } } });
    const refused = await platform.waitFor('second', 'Routed=False', (l) => condition(l, 'Routed')?.status === 'False');
    expect(condition(refused, 'Routed')).toMatchObject({ reason: 'PathConflict', message: `path /shared/ (any host) is held by lambda ${platform.namespace}/first` });
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False', reason: 'PathConflict' });
    expect(await read('ingress', 'kublambda-second')).toBeUndefined();
    expect((await platform.routes()).map((r) => r.name)).not.toContain('second');
    await answers('/shared', 'first /');

    // Another host with the same path is no conflict.
    await platform.apply('elsewhere', { source: hello('elsewhere'), triggers: { http: { path: '/shared', host: 'other.example.com' } } });
    await platform.waitFor('elsewhere', 'Ready', isReady);
    await answers('/shared', 'elsewhere /', 'other.example.com');
    await answers('/shared', 'first /');

    // The holder moves away: the refused lambda takes the path without being touched.
    await platform.apply('first', { source: hello('first'), triggers: { http: { path: '/first' } } });
    await platform.waitFor('second', 'Ready', isReady);
    await answers('/shared', 'second /');
    await answers('/first', 'first /');
    expect((await read('ingress', 'kublambda-second'))!.spec.rules[0].http.paths[0].path).toBe('/shared/');
  });

  it('moves the Ingress and the route when the path changes', async () => {
    await platform.apply('mover', { source: hello('mover'), triggers: { http: { path: '/before' } } });
    await platform.waitFor('mover', 'Ready', isReady);
    await answers('/before', 'mover /');
    await platform.apply('mover', { source: hello('mover'), triggers: { http: { path: '/after' } } });
    await platform.waitFor('mover', 'Ready at generation 2', (l) => isReady(l) && l!.status!.observedGeneration === 2);
    expect((await read('ingress', 'kublambda-mover'))!.spec.rules[0].http.paths[0].path).toBe('/after');
    await answers('/after/x', 'mover /x');
    expect((await callRunner('/before')).status).toBe(404);
  });

  it('removes the Ingress, the Service and the URL when the trigger goes, and stays callable through the runner', async () => {
    await platform.apply('shy', { source: hello('shy'), triggers: { http: { path: '/shy', host: 'shy.example.com' } } });
    const exposed = await platform.waitFor('shy', 'Ready', isReady);
    expect(exposed!.status!.url).toBe('http://shy.example.com/shy');
    await platform.apply('shy', { source: hello('shy') });
    const hidden = await platform.waitFor('shy', 'Ready without a URL', (l) => isReady(l) && l!.status!.observedGeneration === 2 && l!.status!.url === undefined);
    expect(condition(hidden, 'Routed')!.message).toBe(`/${platform.namespace}/shy is served by ${hidden!.status!.artifact!.digest}`);
    await waitUntil('the Ingress and Service to go', async () => !(await read('ingress', 'kublambda-shy')) && !(await read('service', 'kublambda-shy')));
    // In the cluster: http://kublambda-runner.<platform namespace>/<namespace>/<name>.
    await answers(`/${platform.namespace}/shy`, 'shy /');
  });

  it('repairs an Ingress edited or deleted by hand, and the runner Service too', async () => {
    await platform.apply('sturdy', { source: hello('sturdy'), triggers: { http: { path: '/sturdy' } } });
    await platform.waitFor('sturdy', 'Ready', isReady);
    const original = await read('ingress', 'kublambda-sturdy');

    const edit = [{ op: 'replace', path: '/spec/rules/0/http/paths/0/path', value: '/hijacked' }, { op: 'remove', path: '/metadata/annotations/example.com~1team' }];
    expect((await kubectl(['patch', 'ingress', 'kublambda-sturdy', '-n', platform.namespace, '--type=json', '-p', JSON.stringify(edit)])).stderr).toBe('');
    await waitUntil('the edited Ingress to be repaired', async () => {
      const ingress = await read('ingress', 'kublambda-sturdy');
      return ingress?.spec.rules[0].http.paths[0].path === '/sturdy' && ingress.metadata.annotations['example.com/team'] === 'lambdas';
    });

    expect((await kubectl(['delete', 'ingress', 'kublambda-sturdy', '-n', platform.namespace])).exitCode).toBe(0);
    const recreated = await waitUntil('the deleted Ingress to come back', async () => {
      const ingress = await read('ingress', 'kublambda-sturdy');
      return ingress && ingress.metadata.uid !== original!.metadata.uid && ingress;
    });
    expect(recreated.spec).toEqual(original!.spec);

    expect((await kubectl(['delete', 'service', 'kublambda-runner', '-n', platformNamespace.name])).exitCode).toBe(0);
    await waitUntil('the runner Service to come back', () => read('service', 'kublambda-runner', platformNamespace.name));
  });

  it('loses its Ingress and Service to the garbage collector when the Lambda is deleted, and frees its path', async () => {
    await platform.apply('doomed', { source: hello('doomed'), triggers: { http: { path: '/doomed' } } });
    await platform.waitFor('doomed', 'Ready', isReady);
    await platform.apply('heir', { source: hello('heir'), triggers: { http: { path: '/doomed' } } });
    await platform.waitFor('heir', 'PathConflict', (l) => condition(l, 'Routed')?.reason === 'PathConflict');
    expect(await read('service', 'kublambda-doomed')).toBeDefined();

    await platform.remove('doomed');
    await platform.waitFor('doomed', 'gone', (l) => l === undefined);
    // kube-controller-manager's garbage collector removes what the Lambda owned.
    await waitUntil('the Ingress and Service to be collected', async () => !(await read('ingress', 'kublambda-doomed')) && !(await read('service', 'kublambda-doomed')), {
      timeoutMs: 15_000,
      intervalMs: 250,
    });
    await platform.waitFor('heir', 'Ready', isReady);
    await answers('/doomed', 'heir /');
  }, 90_000);
});

describe('env from Secrets and ConfigMaps', () => {
  const source = { inline: 'export default async () => Response.json({ token: process.env.TOKEN, mode: process.env.MODE, plain: process.env.PLAIN })' };
  const env = [
    { name: 'PLAIN', value: 'p' },
    { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api-credentials', key: 'token' } } },
    { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
  ];

  /** Reads the routes hash raw, as anyone allowed into Redis would. */
  const expectNoPlaintext = async (secretValue: string) => {
    const raw = await platform.rawRoutes();
    expect(raw[`${platform.namespace}/configured`]).toBeDefined();
    expect(JSON.stringify(raw)).not.toContain(secretValue);
  };

  it('reports a missing reference, and serves the values once the Secret and ConfigMap exist', async () => {
    expect((await kubectl(['create', 'configmap', 'settings', '-n', platform.namespace, '--from-literal=other=x'])).exitCode).toBe(0);
    await platform.apply('configured', { source, env, triggers: { http: { path: '/configured' } } });
    const waiting = await platform.waitFor('configured', 'Routed=False', (l) => condition(l, 'Routed')?.status === 'False' && Boolean(l?.status?.artifact));
    expect(condition(waiting, 'Routed')).toMatchObject({
      reason: 'EnvReferenceNotFound',
      message: `Secret ${platform.namespace}/api-credentials does not exist (env TOKEN); ConfigMap ${platform.namespace}/settings has no key "mode" (env MODE)`,
    });
    expect((await platform.routes()).map((r) => r.name)).not.toContain('configured');

    expect((await kubectl(['create', 'secret', 'generic', 'api-credentials', '-n', platform.namespace, '--from-literal=token=s3cret'])).exitCode).toBe(0);
    expect((await kubectl(['patch', 'configmap', 'settings', '-n', platform.namespace, '--type=merge', '-p', '{"data":{"mode":"fast"}}'])).exitCode).toBe(0);
    // No nudge: the controller looks again with backoff (capped at 30 s) until they appear.
    await platform.waitFor('configured', 'Ready', isReady, 60_000);
    const route = (await platform.routes()).find((r) => r.name === 'configured');
    // The Secret's value is encrypted, with the id of the key beside it; the rest stays plain.
    expect(route!.env).toEqual([
      { name: 'PLAIN', value: 'p' },
      { name: 'TOKEN', encrypted: { keyId: 'test', iv: expect.any(String), ciphertext: expect.any(String), tag: expect.any(String) } },
      { name: 'MODE', value: 'fast' },
    ]);
    await expectNoPlaintext('s3cret');
    await answers('/configured', JSON.stringify({ token: 's3cret', mode: 'fast', plain: 'p' }));
  }, 90_000);

  it('serves a changed Secret value without a change to the Lambda', async () => {
    // Secrets are not watched: api-controller looks at them again on a 30 s poll (every second
    // here, where the relist runs that often), and the runner gives the new values a new worker.
    const rotated = Buffer.from('rotated').toString('base64');
    expect((await kubectl(['patch', 'secret', 'api-credentials', '-n', platform.namespace, '--type=merge', '-p', `{"data":{"token":"${rotated}"}}`])).exitCode).toBe(0);
    await waitUntil('the rotated token', async () => (await callRunner('/configured')).body === JSON.stringify({ token: 'rotated', mode: 'fast', plain: 'p' }), {
      intervalMs: 500,
      timeoutMs: 60_000,
    });
    await expectNoPlaintext('rotated');
  }, 90_000);

  it('keeps serving the values it had when a Secret goes away, and says so', async () => {
    expect((await kubectl(['delete', 'secret', 'api-credentials', '-n', platform.namespace])).exitCode).toBe(0);
    // Secrets are not watched; any change to the lambda (or the periodic relist) looks again.
    await kubectl(['annotate', 'lam/configured', '-n', platform.namespace, 'touched=1']);
    const lambda = await platform.waitFor('configured', 'Routed=False', (l) => condition(l, 'Routed')?.status === 'False');
    expect(condition(lambda, 'Routed')).toMatchObject({
      reason: 'EnvReferenceNotFound',
      message: `Secret ${platform.namespace}/api-credentials does not exist (env TOKEN); /configured keeps serving the route published before`,
    });
    await answers('/configured', JSON.stringify({ token: 'rotated', mode: 'fast', plain: 'p' }));
  });
});
