// values.schema.json as Helm applies it: the defaults pass, configurations users write pass, and a
// bad value is refused before anything is rendered, with an error naming the value.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { helmBinary } from '@kublambda/dev-servers';

const chart = path.resolve(import.meta.dirname, '../../charts/kublambda');
const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;

async function helm(...args: string[]) {
  return execa(await helmBinary(), args, { reject: false });
}

async function template(...args: string[]) {
  return helm('template', 'kublambda', chart, '--namespace', 'kublambda-system', ...args);
}

let dir: string;
let files = 0;

/** A values file in the test's temp directory, for values --set cannot spell (lists, objects, exact types). */
async function valuesFile(values: object): Promise<string> {
  const file = path.join(dir, `values-${++files}.yaml`);
  await writeFile(file, YAML.stringify(values));
  return file;
}

/**
 * Whether Helm's schema error names the value at `dotted` (runner.maxBodyMiB). The validator
 * gives JSON pointers ("- at '/runner/maxBodyMiB': maximum: ..."), possibly with a place
 * inside the value (an item of a list); an unknown or misnamed key is reported at its parent
 * with the key quoted on the same line ("- at '/runner': additional properties 'replicsa' not
 * allowed"). A dotted path is accepted as well, in case Helm formats the path itself.
 */
function namesPath(output: string, dotted: string): boolean {
  const segments = dotted.split('.');
  const pointer = (parts: string[]) => parts.map((part) => `/${part.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const at = new RegExp(`'${escape(pointer(segments))}(/[^']*)?'`);
  const parent = `'${pointer(segments.slice(0, -1))}'`;
  const key = `'${segments.at(-1)}'`;
  return output.split('\n').some((line) => at.test(line) || line.includes(dotted) || (line.includes(parent) && line.includes(key)));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-chart-values-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Everything the platform needs from outside the cluster's own: the configuration of a
// production install.
const external = {
  redis: { bundled: false, external: { address: 'redis.example.com:6380', tls: true, existingSecret: 'kublambda-redis-users' } },
  objectStore: { bundled: false, external: { endpoint: 'https://s3.example.com', region: 'eu-west-1', existingSecret: 'kublambda-s3' } },
  imageBuilds: { enabled: true, registry: { url: 'https://registry.example.com', existingSecret: 'kublambda-registry' } },
};

describe('charts/kublambda values.schema.json', () => {
  it('lets the default values through helm lint --strict', async () => {
    const linted = await helm('lint', '--strict', chart);
    expect({ exitCode: linted.exitCode, output: linted.stdout + linted.stderr }).toEqual({ exitCode: 0, output: expect.stringContaining('1 chart(s) linted, 0 chart(s) failed') });
  });

  it('lets the default values through helm template', async () => {
    const rendered = await template();
    // Helm notes (on stderr) that the CRD is a link to libs/crd-types: not an error.
    expect({ exitCode: rendered.exitCode, stderr: rendered.stderr }).toEqual({ exitCode: 0, stderr: expect.not.stringMatching(/error|warning/i) });
  });

  it.each<[string, object]>([
    ['Redis, object store and registry of your own, credentials in Secrets', external],
    [
      'credentials given as values, the chart making the Secrets',
      {
        ...external,
        objectStore: { bundled: false, external: { endpoint: 'http://minio.storage:9000', accessKey: 'kublambda', secretKey: 'a-secret' } },
        imageBuilds: { enabled: true, backend: 'kaniko', registry: { url: 'http://registry.local:5000', insecure: true, username: 'kublambda', password: 'a-password' } },
      },
    ],
    ['a Redis Cluster by its seed nodes', { ...external, redis: { bundled: false, external: { address: 'redis-0.redis:6379,redis-1.redis:6379,[fd00::7]:6379', cluster: true, existingSecret: 'kublambda-redis-users' }, writeReplicas: 1 } }],
    [
      'the optional values set',
      {
        image: { tag: '0.2.0-rc.1', digests: { runner: digest, 'api-controller': digest }, pullSecrets: ['ghcr-pull'] },
        apiController: { watchNamespace: 'lambdas', extraEnv: [{ name: 'RELIST_INTERVAL_MS', value: '300000' }] },
        runner: { podDisruptionBudget: { maxUnavailable: '25%' }, networkPolicy: { restrictEgress: true, allowedEgress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 443 }] }] } },
        autoscaler: { minReplicas: 0, targetCpuUtilization: 0.6, panicWindowPercent: 12.5 },
        http: { ingressClassName: 'nginx', externalBaseUrl: 'https://lambdas.example.com', routeGrants: { shop: ['shop.example.com', '/shop'] }, routeGrantsOnly: true },
        watchTriggers: { namespaceGrants: { ops: ['shop', 'billing'] } },
        envEncryption: { existingSecret: 'kublambda-env-keys' },
        tests: { image: `ghcr.io/kublambda/chart-test@${digest}` },
      },
    ],
  ])('accepts %s', async (_, values) => {
    const rendered = await template('--values', await valuesFile(values));
    expect({ exitCode: rendered.exitCode, stderr: rendered.stderr }).toEqual({ exitCode: 0, stderr: expect.not.stringMatching(/error|warning/i) });
  });

  // [what is wrong, helm arguments, the path the error must name]
  it.each<[string, string[] | object, string]>([
    ['a string for a number', ['--set', 'runner.maxBodyMiB=lots'], 'runner.maxBodyMiB'],
    ['a string for a boolean', ['--set', 'runner.topologySpread=yes'], 'runner.topologySpread'],
    ['a body limit above the runner\'s 4096 MiB', ['--set', 'runner.maxBodyMiB=5000'], 'runner.maxBodyMiB'],
    ['no reconciles at once', ['--set', 'apiController.reconcileConcurrency=0'], 'apiController.reconcileConcurrency'],
    ['more concurrent builds than the builder allows', ['--set', 'builder.concurrency=65'], 'builder.concurrency'],
    ['a worker pool above 64', ['--set', 'runner.workerPoolSize=65'], 'runner.workerPoolSize'],
    ['a fraction for a whole number', { runner: { workerIdleSeconds: 2.5 } }, 'runner.workerIdleSeconds'],
    ['a utilization above 1', { autoscaler: { targetUtilization: 1.5 } }, 'autoscaler.targetUtilization'],
    ['a CPU utilization of 0', { autoscaler: { targetCpuUtilization: 0 } }, 'autoscaler.targetCpuUtilization'],
    ['a stable window of 1 s', ['--set', 'autoscaler.stableWindowSeconds=1'], 'autoscaler.stableWindowSeconds'],
    ['more write replicas than 16', { redis: { bundled: false, external: { address: 'redis:6379', existingSecret: 'redis-users' }, writeReplicas: 17 } }, 'redis.writeReplicas'],
    ['write replicas with the bundled single Redis', ['--set', 'redis.writeReplicas=1'], 'redis.writeReplicas'],
    ['a misspelt key', ['--set', 'runner.replicsa=3'], 'runner.replicsa'],
    ['a misspelt top-level key', ['--set', 'imageBuild.enabled=true'], 'imageBuild'],
    ['an image backend that does not exist', ['--set', 'imageBuilds.backend=docker'], 'imageBuilds.backend'],
    ['a pull policy that does not exist', ['--set', 'image.pullPolicy=Sometimes'], 'image.pullPolicy'],
    ['a short digest', ['--set', 'image.digests.runner=sha256:0123abc'], 'image.digests.runner'],
    ['a digest for no service', ['--set', `image.digests.apiController=${digest}`], 'image.digests.apiController'],
    ['a registry URL without a scheme', ['--set', 'imageBuilds.enabled=true,imageBuilds.registry.url=registry.example.com'], 'imageBuilds.registry.url'],
    ['a plain http registry without insecure', ['--set', 'imageBuilds.enabled=true,imageBuilds.registry.url=http://registry.local:5000'], 'imageBuilds.registry.insecure'],
    ['a registry user without a password', ['--set', 'imageBuilds.enabled=true,imageBuilds.registry.url=https://r.example.com,imageBuilds.registry.username=me'], 'imageBuilds.registry.password'],
    ['an external base URL with a path', ['--set', 'http.externalBaseUrl=https://lambdas.example.com/fn'], 'http.externalBaseUrl'],
    ['an S3 endpoint without a scheme', { objectStore: { bundled: false, external: { endpoint: 's3.example.com', existingSecret: 's3' } } }, 'objectStore.external.endpoint'],
    ['secrets among the watchable resources', { watchTriggers: { watchableResources: ['configmaps', 'secrets'] } }, 'watchTriggers.watchableResources'],
    ['a watchable resource that is no group/resource', { watchTriggers: { watchableResources: ['Deployments.apps'] } }, 'watchTriggers.watchableResources'],
    ['no watchable resources', { watchTriggers: { watchableResources: [] } }, 'watchTriggers.watchableResources'],
    ['a route grant for no namespace name', { http: { routeGrants: { Shop: ['/shop'] } } }, 'http.routeGrants.Shop'],
    ['an external Redis without an address', ['--set', 'redis.bundled=false,redis.external.existingSecret=redis-users'], 'redis.external.address'],
    ['an external Redis without its users\' Secret', ['--set', 'redis.bundled=false,redis.external.address=redis.example.com:6379'], 'redis.external.existingSecret'],
    ['a Redis address without a port', ['--set', 'redis.bundled=false,redis.external.address=redis.example.com,redis.external.existingSecret=redis-users'], 'redis.external.address'],
    ['several Redis addresses without cluster', ['--set', 'redis.bundled=false,redis.external.address=a:6379\\,b:6379,redis.external.existingSecret=redis-users'], 'redis.external.cluster'],
    ['an external object store without an endpoint', ['--set', 'objectStore.bundled=false,objectStore.external.existingSecret=s3'], 'objectStore.external.endpoint'],
    ['an external object store without credentials', ['--set', 'objectStore.bundled=false,objectStore.external.endpoint=https://s3.example.com'], 'objectStore.external.existingSecret'],
    ['an external object store with half the keys', ['--set', 'objectStore.bundled=false,objectStore.external.endpoint=https://s3.example.com,objectStore.external.accessKey=ak'], 'objectStore.external.secretKey'],
    ['a bucket name S3 refuses', ['--set', 'objectStore.bucket=Kublambda_Assets'], 'objectStore.bucket'],
    ['image builds on without a registry URL', ['--set', 'imageBuilds.enabled=true'], 'imageBuilds.registry.url'],
    ['a base image without tag or digest', ['--set', 'imageBuilds.baseImage=kublambda/runner-base'], 'imageBuilds.baseImage'],
    ['a size in the wrong unit', ['--set', 'builder.cacheSizeLimit=2GB'], 'builder.cacheSizeLimit'],
    ['a volume size that is no quantity', ['--set', 'objectStore.bundledServer.persistence.size=ten'], 'objectStore.bundledServer.persistence.size'],
    ['a Redis maxmemory in Kubernetes units', ['--set', 'redis.bundledServer.maxmemory=1Gi'], 'redis.bundledServer.maxmemory'],
    ['negative runner replicas', ['--set', 'runner.replicas=-1'], 'runner.replicas'],
    ['no api-controller', ['--set', 'apiController.replicas=0'], 'apiController.replicas'],
    ['more runner pods than the autoscaler allows', ['--set', 'autoscaler.maxReplicas=100001'], 'autoscaler.maxReplicas'],
    ['an extra variable without a name', { builder: { extraEnv: [{ value: 'x' }] } }, 'builder.extraEnv'],
    ['a namespace that is no DNS label', ['--set', 'apiController.watchNamespace=Lambdas'], 'apiController.watchNamespace'],
  ])('refuses %s', async (_, values, valuePath) => {
    const args = Array.isArray(values) ? values : ['--values', await valuesFile(values)];
    const rendered = await template(...args);
    // stderr goes along so that a failure shows what Helm said.
    expect({ failed: rendered.exitCode !== 0, schemaError: rendered.stderr.includes("values don't meet the specifications of the schema"), namesPath: namesPath(rendered.stderr, valuePath), stderr: rendered.stderr }).toEqual({
      failed: true,
      schemaError: true,
      namesPath: true,
      stderr: expect.any(String),
    });
  });

  // JSON Schema cannot compare two values; the template refuses this itself.
  it('refuses more autoscaler minReplicas than maxReplicas, naming both', async () => {
    const rendered = await template('--set', 'autoscaler.minReplicas=30', '--set', 'autoscaler.maxReplicas=20');
    expect({ exitCode: rendered.exitCode, stderr: rendered.stderr }).toEqual({ exitCode: 1, stderr: expect.stringContaining('autoscaler.minReplicas (30) must not be more than autoscaler.maxReplicas (20)') });
  });
});
