// Runs against the real kube-apiserver started by the Jest global setup.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, kubectl, testKubeConfig } from '@kublambda/dev-servers';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from './index.ts';

const kubeConfig = testKubeConfig();
const customObjects = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
let namespace: { name: string; delete(): Promise<void> };

beforeAll(async () => {
  namespace = await createTestNamespace(kubeConfig, 'crd');
});
afterAll(async () => {
  await namespace.delete();
});

function lambda(name: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: `${LAMBDA_GROUP}/${LAMBDA_VERSION}`, kind: 'Lambda', metadata: { name }, spec, ...extra };
}

const hello = { inline: 'export default async () => new Response("hello")' };

/** Creates like `kubectl create` does (strict field validation); returns the API server's verdict. */
async function create(body: Record<string, unknown>): Promise<{ status: number; message: string; object?: Lambda }> {
  try {
    const object = (await customObjects.createNamespacedCustomObject({
      group: LAMBDA_GROUP,
      version: LAMBDA_VERSION,
      namespace: namespace.name,
      plural: LAMBDA_PLURAL,
      body,
      fieldValidation: 'Strict',
    })) as Lambda;
    return { status: 201, message: '', object };
  } catch (error) {
    if (!(error instanceof k8s.ApiException)) throw error;
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return { status: error.code, message: body.message as string };
  }
}

async function read(name: string): Promise<Lambda> {
  return (await customObjects.getNamespacedCustomObject({
    group: LAMBDA_GROUP,
    version: LAMBDA_VERSION,
    namespace: namespace.name,
    plural: LAMBDA_PLURAL,
    name,
  })) as Lambda;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

describe('Lambda CRD on a real API server', () => {
  it('is established with its names, short name and category', async () => {
    const crd = await kubeConfig.makeApiClient(k8s.ApiextensionsV1Api).readCustomResourceDefinition({ name: 'lambdas.kublambda.io' });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.status?.acceptedNames).toMatchObject({ kind: 'Lambda', plural: 'lambdas', shortNames: ['lam'], categories: ['kublambda'] });
    const resources = await kubectl(['api-resources', '--api-group=kublambda.io', '--no-headers']);
    expect(resources.stdout).toMatch(/^lambdas\s+lam\s+kublambda\.io\/v1alpha1\s+true\s+Lambda$/m);
  });

  it('round-trips a valid Lambda with defaults applied', async () => {
    const created = await create(
      lambda('defaults', {
        source: hello,
        triggers: { http: {}, watch: [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=demo' }] },
        stateTables: ['visits', 'orders'],
      }),
    );
    expect(created.message).toBe('');
    const stored = await read('defaults');
    expect(stored.spec).toEqual({
      runtime: 'nodejs',
      source: hello,
      entrypoint: 'index.ts',
      build: { typeCheck: false },
      triggers: { http: {}, watch: [{ apiVersion: 'v1', kind: 'ConfigMap', labelSelector: 'app=demo', events: ['ADDED', 'MODIFIED', 'DELETED'] }] },
      stateTables: ['visits', 'orders'],
      stateRetention: 'Retain',
      timeoutSeconds: 30,
      memoryMiB: 128,
      concurrency: 50,
      cpuMillis: 10000,
      network: 'outbound',
    });
    expect(stored.metadata.generation).toBe(1);
  });

  it('keeps every field of a full spec as written', async () => {
    const spec = {
      runtime: 'nodejs',
      source: { files: { 'src/main.ts': 'export default { fetch: () => new Response("ok") }', 'package.json': '{"dependencies":{}}' } },
      entrypoint: 'src/main.ts',
      build: { typeCheck: true },
      triggers: {
        http: { path: '/shop/orders/', host: 'lambdas.example.com', ingressClassName: 'nginx', tlsSecretName: 'lambdas-tls' },
        watch: [
          { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'other', fieldSelector: 'metadata.name=web', events: ['MODIFIED'], condition: 'object.spec.replicas > 3' },
        ],
      },
      stateTables: ['orders'],
      stateRetention: 'Delete',
      timeoutSeconds: 900,
      memoryMiB: 512,
      concurrency: 1,
      cpuMillis: 250,
      network: 'none',
      env: [
        { name: 'GREETING', value: 'hi' },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
      ],
    };
    expect((await create(lambda('full', spec))).message).toBe('');
    expect((await read('full')).spec).toEqual(spec);
    for (const source of [{ configMapRef: { name: 'hello-src' } }, { archive: { url: 's3://sources/hello.tgz', sha256: 'a'.repeat(64) } }]) {
      const name = `source-${Object.keys(source)[0]!.toLowerCase()}`;
      expect((await create(lambda(name, { source }))).message).toBe('');
    }
  });

  // Each spec is wrong in one way; the API server must refuse it with a message naming the field.
  const invalid: Array<[string, Record<string, unknown>, string | RegExp]> = [
    ['no spec', lambda('x', {}, { spec: undefined }), 'spec: Required value'],
    ['no source', lambda('x', { runtime: 'nodejs' }), 'spec.source: Required value'],
    ['empty source', lambda('x', { source: {} }), 'spec.source: Invalid value: spec.source must set exactly one of inline, files, configMapRef or archive'],
    ['two sources', lambda('x', { source: { ...hello, configMapRef: { name: 'src' } } }), 'spec.source: Invalid value: spec.source must set exactly one'],
    ['empty inline source', lambda('x', { source: { inline: '' } }), 'spec.source.inline: Invalid value: "": spec.source.inline in body should be at least 1 chars long'],
    ['inline source over 256 KiB', lambda('x', { source: { inline: 'x'.repeat(262_145) } }), 'spec.source.inline: Too long'],
    ['file path escaping the source root', lambda('x', { source: { files: { 'index.ts': 'x', '../evil.ts': 'x' } } }), 'spec.source.files: Invalid value: spec.source.files keys must be relative paths'],
    ['absolute file path', lambda('x', { source: { files: { '/etc/passwd': 'x', 'index.ts': 'x' } } }), 'spec.source.files: Invalid value'],
    ['entrypoint not among the files', lambda('x', { source: { files: { 'main.ts': 'x' } } }), 'spec.entrypoint: Invalid value: spec.entrypoint must name one of the files in spec.source.files'],
    ['configMapRef without name', lambda('x', { source: { configMapRef: {} } }), 'spec.source.configMapRef.name: Required value'],
    ['archive with an ftp URL', lambda('x', { source: { archive: { url: 'ftp://example.com/a.tgz' } } }), 'spec.source.archive.url: Invalid value: "ftp://example.com/a.tgz"'],
    ['archive with a short sha256', lambda('x', { source: { archive: { url: 'https://example.com/a.tgz', sha256: 'abc' } } }), 'spec.source.archive.sha256: Invalid value: "abc"'],
    ['unknown runtime', lambda('x', { source: hello, runtime: 'python' }), 'spec.runtime: Unsupported value: "python": supported values: "nodejs"'],
    ['entrypoint with an absolute path', lambda('x', { source: hello, entrypoint: '/index.ts' }), 'spec.entrypoint: Invalid value: "/index.ts"'],
    ['entrypoint with a non-JavaScript extension', lambda('x', { source: hello, entrypoint: 'index.py' }), 'spec.entrypoint: Invalid value: "index.py"'],
    ['typeCheck not a boolean', lambda('x', { source: hello, build: { typeCheck: 'yes' } }), 'spec.build.typeCheck: Invalid value: "string": spec.build.typeCheck in body must be of type boolean'],
    ['negative timeout', lambda('x', { source: hello, timeoutSeconds: -5 }), 'spec.timeoutSeconds: Invalid value: -5: spec.timeoutSeconds in body should be greater than or equal to 1'],
    ['timeout over 15 minutes', lambda('x', { source: hello, timeoutSeconds: 901 }), 'spec.timeoutSeconds: Invalid value: 901: spec.timeoutSeconds in body should be less than or equal to 900'],
    ['timeout as a string', lambda('x', { source: hello, timeoutSeconds: '30s' }), 'spec.timeoutSeconds: Invalid value: "string": spec.timeoutSeconds in body must be of type integer'],
    ['memory below 32 MiB', lambda('x', { source: hello, memoryMiB: 16 }), 'spec.memoryMiB: Invalid value: 16'],
    ['zero concurrency', lambda('x', { source: hello, concurrency: 0 }), 'spec.concurrency: Invalid value: 0'],
    ['a CPU budget below 10 ms', lambda('x', { source: hello, cpuMillis: 5 }), 'spec.cpuMillis: Invalid value: 5'],
    ['unknown network mode', lambda('x', { source: hello, network: 'private' }), 'spec.network: Unsupported value: "private": supported values: "outbound", "none"'],
    ['duplicate state table names', lambda('x', { source: hello, stateTables: ['visits', 'orders', 'visits'] }), 'spec.stateTables[2]: Duplicate value: "visits"'],
    ['state table name with spaces', lambda('x', { source: hello, stateTables: ['my table'] }), 'spec.stateTables[0]: Invalid value: "my table"'],
    ['unknown state retention', lambda('x', { source: hello, stateRetention: 'Forever' }), 'spec.stateRetention: Unsupported value: "Forever"'],
    ['HTTP path without leading slash', lambda('x', { source: hello, triggers: { http: { path: 'hello' } } }), 'spec.triggers.http.path: Invalid value: "hello"'],
    ['HTTP path with ..', lambda('x', { source: hello, triggers: { http: { path: '/a/../b' } } }), 'spec.triggers.http.path: Invalid value: "/a/../b"'],
    ['HTTP path with a space', lambda('x', { source: hello, triggers: { http: { path: '/a b' } } }), 'spec.triggers.http.path: Invalid value: "/a b"'],
    ['HTTP path with an empty segment', lambda('x', { source: hello, triggers: { http: { path: '/a//b' } } }), 'spec.triggers.http.path: Invalid value: "/a//b"'],
    ['host with upper case', lambda('x', { source: hello, triggers: { http: { host: 'Lambdas.Example.com' } } }), 'spec.triggers.http.host: Invalid value: "Lambdas.Example.com"'],
    ['TLS secret without host', lambda('x', { source: hello, triggers: { http: { tlsSecretName: 'tls' } } }), 'spec.triggers.http.tlsSecretName: Invalid value: spec.triggers.http.tlsSecretName needs spec.triggers.http.host'],
    ['watch trigger without kind', lambda('x', { source: hello, triggers: { watch: [{ apiVersion: 'v1' }] } }), 'spec.triggers.watch[0].kind: Required value'],
    ['watch trigger without apiVersion', lambda('x', { source: hello, triggers: { watch: [{ kind: 'ConfigMap' }] } }), 'spec.triggers.watch[0].apiVersion: Required value'],
    ['watch trigger with a lower-case kind', lambda('x', { source: hello, triggers: { watch: [{ apiVersion: 'v1', kind: 'configmap' }] } }), 'spec.triggers.watch[0].kind: Invalid value: "configmap"'],
    ['watch trigger with a malformed apiVersion', lambda('x', { source: hello, triggers: { watch: [{ apiVersion: 'apps/version1', kind: 'Deployment' }] } }), 'spec.triggers.watch[0].apiVersion: Invalid value: "apps/version1"'],
    ['watch trigger with an unknown event', lambda('x', { source: hello, triggers: { watch: [{ apiVersion: 'v1', kind: 'Pod', events: ['UPDATED'] }] } }), 'spec.triggers.watch[0].events[0]: Unsupported value: "UPDATED"'],
    ['watch trigger with no events', lambda('x', { source: hello, triggers: { watch: [{ apiVersion: 'v1', kind: 'Pod', events: [] }] } }), 'spec.triggers.watch[0].events: Invalid value: 0: spec.triggers.watch[0].events in body should have at least 1 items'],
    ['env name reserved for the platform', lambda('x', { source: hello, env: [{ name: 'KUBLAMBDA_REDIS_URL', value: 'x' }] }), 'spec.env[0].name: Forbidden: env names starting with KUBLAMBDA_ are reserved for the platform'],
    ['duplicate env names', lambda('x', { source: hello, env: [{ name: 'A', value: '1' }, { name: 'A', value: '2' }] }), 'spec.env[1]: Duplicate value: {"name":"A"}'],
    ['env with value and valueFrom', lambda('x', { source: hello, env: [{ name: 'A', value: '1', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }), 'spec.env[0]: Invalid value: an env entry sets value or valueFrom, not both'],
    ['env name with a dash', lambda('x', { source: hello, env: [{ name: 'MY-VAR', value: '1' }] }), 'spec.env[0].name: Invalid value: "MY-VAR"'],
    // Strict field validation (kubectl's default) refuses unknown fields with 400 rather than 422.
    ['unknown field', lambda('x', { source: hello, handler: 'index.default' }), 'strict decoding error: unknown field "spec.handler"'],
    ['name too long for the derived objects', { ...lambda('x', { source: hello }), metadata: { name: 'a'.repeat(54) } }, 'metadata.name must be at most 53 characters'],
    ['name with a dot', { ...lambda('x', { source: hello }), metadata: { name: 'hello.world' } }, 'metadata.name must be at most 53 characters'],
  ];

  it.each(invalid)('refuses %s, naming the field', async (_case, body, expected) => {
    const name = `invalid-${Math.random().toString(36).slice(2, 10)}`;
    const withName = (body.metadata as { name: string }).name === 'x' ? { ...body, metadata: { name } } : body;
    const result = await create(withName);
    expect(result.status).toBe(_case === 'unknown field' ? 400 : 422);
    expect(result.message).toContain(expected as string);
  });

  it('stored none of the refused Lambdas', async () => {
    const list = (await customObjects.listNamespacedCustomObject({
      group: LAMBDA_GROUP,
      version: LAMBDA_VERSION,
      namespace: namespace.name,
      plural: LAMBDA_PLURAL,
    })) as { items: Lambda[] };
    expect(list.items.map((item) => item.metadata.name).filter((name) => !/^(defaults|full|source-.*|status-.*|columns)$/.test(name!))).toEqual([]);
  });

  it('ignores status written through the main resource (status subresource)', async () => {
    const forged = { observedGeneration: 7, url: 'http://evil.example.com/', conditions: [] };
    const created = await create(lambda('status-guard', { source: hello }, { status: forged }));
    expect(created.object?.status).toBeUndefined();

    const patchMain = (body: object) =>
      customObjects.patchNamespacedCustomObject(
        { group: LAMBDA_GROUP, version: LAMBDA_VERSION, namespace: namespace.name, plural: LAMBDA_PLURAL, name: 'status-guard', body },
        mergePatch,
      );
    await patchMain({ status: forged, spec: { timeoutSeconds: 10 } });
    let stored = await read('status-guard');
    expect(stored.spec.timeoutSeconds).toBe(10);
    expect(stored.metadata.generation).toBe(2);
    expect(stored.status).toBeUndefined();

    // The platform writes status through /status; that does not bump the generation.
    await customObjects.patchNamespacedCustomObjectStatus(
      {
        group: LAMBDA_GROUP, version: LAMBDA_VERSION, namespace: namespace.name, plural: LAMBDA_PLURAL, name: 'status-guard',
        body: { status: { observedGeneration: 2, url: 'http://lambdas.example.com/status-guard' } },
      },
      mergePatch,
    );
    await patchMain({ status: forged });
    stored = await read('status-guard');
    expect(stored.status).toEqual({ observedGeneration: 2, url: 'http://lambdas.example.com/status-guard' });
    expect(stored.metadata.generation).toBe(2);

    // And /status cannot change the spec.
    await customObjects.patchNamespacedCustomObjectStatus(
      { group: LAMBDA_GROUP, version: LAMBDA_VERSION, namespace: namespace.name, plural: LAMBDA_PLURAL, name: 'status-guard', body: { spec: { timeoutSeconds: 99 } } },
      mergePatch,
    );
    expect((await read('status-guard')).spec.timeoutSeconds).toBe(10);
  });

  it('refuses a malformed status from the platform too', async () => {
    await create(lambda('status-check', { source: hello }));
    const patch = customObjects.patchNamespacedCustomObjectStatus(
      {
        group: LAMBDA_GROUP, version: LAMBDA_VERSION, namespace: namespace.name, plural: LAMBDA_PLURAL, name: 'status-check',
        body: { status: { artifact: { digest: 'md5:abc', size: 1 } } },
      },
      mergePatch,
    );
    const error = (await patch.then(() => undefined, (e: unknown) => e)) as k8s.ApiException<string>;
    expect(error.code).toBe(422);
    expect(JSON.parse(error.body).message).toContain('status.artifact.digest: Invalid value: "md5:abc"');
  });

  it('shows Ready, URL, Image and Age in kubectl get lam, and Reason with -o wide', async () => {
    await create(lambda('columns', { source: hello }));
    await customObjects.patchNamespacedCustomObjectStatus(
      {
        group: LAMBDA_GROUP, version: LAMBDA_VERSION, namespace: namespace.name, plural: LAMBDA_PLURAL, name: 'columns',
        body: {
          status: {
            conditions: [{ type: 'Ready', status: 'True', reason: 'Serving', message: 'answering requests', lastTransitionTime: new Date().toISOString() }],
            url: 'http://lambdas.example.com/columns',
            image: 'registry.example.com/kublambda/columns@sha256:' + 'b'.repeat(64),
          },
        },
      },
      mergePatch,
    );
    const table = await kubectl(['get', 'lam', 'columns', '-n', namespace.name]);
    expect(table.stderr).toBe('');
    const [header, row] = table.stdout.split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'READY', 'URL', 'IMAGE', 'AGE']);
    expect(row!.split(/\s+/).slice(0, 4)).toEqual(['columns', 'True', 'http://lambdas.example.com/columns', `registry.example.com/kublambda/columns@sha256:${'b'.repeat(64)}`]);
    expect(row).toMatch(/\s\d+s$/);

    const wide = await kubectl(['get', 'lam', 'columns', '-n', namespace.name, '-o', 'wide']);
    expect(wide.stdout.split('\n')[0]!.split(/\s+/)).toEqual(['NAME', 'READY', 'REASON', 'URL', 'IMAGE', 'AGE']);
    expect(wide.stdout).toContain('Serving');

    const byCategory = await kubectl(['get', 'kublambda', '-n', namespace.name, '-o', 'name']);
    expect(byCategory.stdout.split('\n')).toContain('lambda.kublambda.io/columns');
  });

  it('documents its fields for kubectl explain', async () => {
    const spec = await kubectl(['explain', 'lambda.spec']);
    expect(spec.exitCode).toBe(0);
    expect(spec.stdout).toContain('KIND:       Lambda');
    expect(spec.stdout).toContain('What the lambda is and how it is called.');
    expect(spec.stdout).toMatch(/source\s+<Object> -required-/);
    expect(spec.stdout).toContain('The language runtime that runs the handler.');
    expect(spec.stdout).toContain('Names of the state tables this lambda may use');
    const condition = await kubectl(['explain', 'lam.spec.triggers.watch.condition']);
    expect(condition.stdout).toContain('CEL expression over {type, object, oldObject}');
  });
});
