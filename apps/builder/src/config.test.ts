import { describe, expect, it } from '@jest/globals';
import { parseBuilderConfig } from './config.ts';

const required = { REDIS_URL: 'redis://builder:secret@127.0.0.1:6379', ARTIFACT_STORE_URL: 'file:///tmp/assets' };

describe('parseBuilderConfig: the admin server', () => {
  it.each([
    ['is off without ADMIN_PORT', {}, undefined],
    ['listens on loopback, read-only, by default', { ADMIN_PORT: '9090' }, { host: '127.0.0.1', port: 9090, boardActions: false }],
    ['takes a host and board actions', { ADMIN_PORT: '9090', ADMIN_HOST: '0.0.0.0', BUILD_BOARD_ACTIONS: 'true' }, { host: '0.0.0.0', port: 9090, boardActions: true }],
    ['takes a host name', { ADMIN_PORT: '1', ADMIN_HOST: 'localhost', BUILD_BOARD_ACTIONS: 'FALSE' }, { host: 'localhost', port: 1, boardActions: false }],
    ['ignores blank values', { ADMIN_PORT: ' ', ADMIN_HOST: '', BUILD_BOARD_ACTIONS: '' }, undefined],
  ])('%s', (_, env, admin) => {
    expect(parseBuilderConfig({ ...required, ...env }).admin).toEqual(admin);
  });

  it.each([
    [{ ADMIN_PORT: 'http' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "http"'],
    [{ ADMIN_PORT: '0' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "0"'],
    [{ ADMIN_PORT: '65536' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "65536"'],
    [{ ADMIN_PORT: '80.5' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "80.5"'],
    [{ ADMIN_PORT: '9090', ADMIN_HOST: 'http://0.0.0.0' }, 'ADMIN_HOST must be an IP address or a host name, not "http://0.0.0.0"'],
    [{ ADMIN_PORT: '9090', BUILD_BOARD_ACTIONS: 'yes' }, 'BUILD_BOARD_ACTIONS must be true or false, not "yes"'],
    [{ ADMIN_HOST: '0.0.0.0' }, 'ADMIN_HOST is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)'],
    [{ BUILD_BOARD_ACTIONS: 'true' }, 'BUILD_BOARD_ACTIONS is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)'],
  ])('refuses %j', (env, problem) => {
    expect(() => parseBuilderConfig({ ...required, ...env })).toThrow(`builder: invalid configuration:\n  - ${problem}`);
  });

  it('reports every admin problem with the others at once', () => {
    expect(() => parseBuilderConfig({ ARTIFACT_STORE_URL: 'file:///tmp/assets', ADMIN_PORT: 'x', BUILD_BOARD_ACTIONS: 'maybe' })).toThrow(
      'builder: invalid configuration:\n  - REDIS_URL is required\n  - ADMIN_PORT must be a whole number from 1 to 65535, not "x"\n  - BUILD_BOARD_ACTIONS must be true or false, not "maybe"',
    );
  });
});

describe('parseBuilderConfig: the image backend', () => {
  const direct = { IMAGE_BACKEND: 'direct', IMAGE_REGISTRY_URL: 'https://registry.example.com', IMAGE_BASE: 'kublambda/runner-base:v1' };

  it.each([
    ['is off by default', {}, { backend: 'off' }],
    ['is off when asked', { IMAGE_BACKEND: 'off' }, { backend: 'off' }],
    ['pushes straight to an https registry', direct, { backend: 'direct', registry: { url: 'https://registry.example.com', insecure: false }, base: { repo: 'kublambda/runner-base', reference: 'v1' } }],
    [
      'takes credentials, plain http when insecure, and a base by digest',
      { ...direct, IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000/', IMAGE_REGISTRY_INSECURE: 'true', IMAGE_REGISTRY_USERNAME: 'builder', IMAGE_REGISTRY_PASSWORD: 's3cret', IMAGE_BASE: `runner@sha256:${'a'.repeat(64)}` },
      { backend: 'direct', registry: { url: 'http://127.0.0.1:5000', username: 'builder', password: 's3cret', insecure: true }, base: { repo: 'runner', reference: `sha256:${'a'.repeat(64)}` } },
    ],
  ])('%s', (_, env, image) => {
    expect(parseBuilderConfig({ ...required, ...env }).image).toEqual(image);
  });

  it.each([
    [{ IMAGE_BACKEND: 'docker' }, 'IMAGE_BACKEND must be off, direct or kaniko, not "docker"'],
    [{ IMAGE_BACKEND: 'direct' }, 'IMAGE_REGISTRY_URL is required with IMAGE_BACKEND=direct (http(s)://host[:port] of the registry, as the builder reaches it)\n  - IMAGE_BASE is required'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000' }, 'IMAGE_REGISTRY_URL is plain http ("http://127.0.0.1:5000"): set IMAGE_REGISTRY_INSECURE=true to allow it, or use https'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'https://registry.example.com/v2' }, 'IMAGE_REGISTRY_URL must be http(s)://host[:port] with no path, query or credentials, not "https://registry.example.com/v2"'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'registry.example.com' }, 'IMAGE_REGISTRY_URL must be http(s)://host[:port]'],
    [{ ...direct, IMAGE_REGISTRY_INSECURE: 'yes' }, 'IMAGE_REGISTRY_INSECURE must be true or false, not "yes"'],
    [{ ...direct, IMAGE_REGISTRY_USERNAME: 'builder' }, 'IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD go together: set both or neither'],
    [{ ...direct, IMAGE_BASE: 'runner' }, 'IMAGE_BASE must be repo:tag or repo@sha256:<64 hex>'],
    [{ ...direct, IMAGE_BASE: 'registry.example.com:5000/runner' }, 'IMAGE_BASE must be repo:tag or repo@sha256:<64 hex>'],
    [{ ...direct, IMAGE_BASE: 'Runner:v1' }, 'IMAGE_BASE must be repo:tag'],
    [{ ...direct, IMAGE_BASE: 'runner@sha256:abc' }, 'IMAGE_BASE must be repo:tag'],
    [{ IMAGE_BASE: 'runner:v1' }, 'IMAGE_BASE is set but IMAGE_BACKEND is off (set IMAGE_BACKEND=direct to build images)'],
    [{ KANIKO_IMAGE: 'kaniko:v1' }, 'KANIKO_IMAGE is set but IMAGE_BACKEND is off (it is read with IMAGE_BACKEND=kaniko only)'],
    [{ ...direct, KANIKO_POD_ANNOTATIONS: '{}' }, 'KANIKO_POD_ANNOTATIONS is set but IMAGE_BACKEND is direct (it is read with IMAGE_BACKEND=kaniko only)'],
  ])('refuses %j', (env, problem) => {
    expect(() => parseBuilderConfig({ ...required, ...env })).toThrow(problem);
  });
});

describe('parseBuilderConfig: the kaniko backend', () => {
  const s3 = { ARTIFACT_STORE_URL: 's3://lambdas/assets', S3_ENDPOINT: 'http://minio.kublambda-system:9000', S3_ACCESS_KEY: 'builder', S3_SECRET_KEY: 's3cret', S3_REGION: 'eu-west-1' };
  const kaniko = {
    ...s3,
    IMAGE_BACKEND: 'kaniko',
    IMAGE_REGISTRY_URL: 'https://registry.example.com',
    IMAGE_BASE: 'kublambda/runner-base:v1',
    KANIKO_REGISTRY_SECRET: 'kaniko-registry',
    KANIKO_S3_SECRET: 'kaniko-s3',
  };
  const defaults = {
    backend: 'kaniko',
    registry: { host: 'registry.example.com', insecure: false },
    base: { repo: 'kublambda/runner-base', reference: 'v1' },
    image: 'ghcr.io/osscontainertools/kaniko:v1.28.3',
    namespace: 'kublambda-system',
    registrySecret: 'kaniko-registry',
    s3Secret: 'kaniko-s3',
    context: { bucket: 'lambdas', prefix: 'kaniko-contexts/', endpoint: 'http://minio.kublambda-system:9000', region: 'eu-west-1' },
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
    activeDeadlineSeconds: 900,
    ttlSecondsAfterFinished: 3600,
    podAnnotations: {},
  };

  it.each([
    ['takes the defaults', {}, defaults],
    ['lives in the pod\'s namespace', { POD_NAMESPACE: 'platform' }, { ...defaults, namespace: 'platform' }],
    [
      'takes every setting',
      {
        IMAGE_REGISTRY_URL: 'http://registry.kublambda-system:5000',
        IMAGE_REGISTRY_INSECURE: 'true',
        IMAGE_BASE: `runner@sha256:${'a'.repeat(64)}`,
        KANIKO_IMAGE: 'registry.example.com:5000/mirror/kaniko:v1.28.3@sha256:' + 'b'.repeat(64),
        KANIKO_NAMESPACE: 'builds',
        KANIKO_S3_ENDPOINT: 'https://s3.internal:9443/',
        KANIKO_CONTEXT_PREFIX: 'tmp/contexts',
        KANIKO_CPU_REQUEST: '1',
        KANIKO_MEMORY_REQUEST: '1Gi',
        KANIKO_CPU_LIMIT: '2.5',
        KANIKO_MEMORY_LIMIT: 'none',
        KANIKO_DEADLINE_SECONDS: '60',
        KANIKO_TTL_SECONDS: '1',
        KANIKO_POD_ANNOTATIONS: '{"sidecar.istio.io/inject":"false","note":"x"}',
      },
      {
        ...defaults,
        registry: { host: 'registry.kublambda-system:5000', insecure: true },
        base: { repo: 'runner', reference: `sha256:${'a'.repeat(64)}` },
        image: 'registry.example.com:5000/mirror/kaniko:v1.28.3@sha256:' + 'b'.repeat(64),
        namespace: 'builds',
        context: { bucket: 'lambdas', prefix: 'tmp/contexts/', endpoint: 'https://s3.internal:9443', region: 'eu-west-1' },
        resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2.5' } },
        activeDeadlineSeconds: 60,
        ttlSecondsAfterFinished: 1,
        podAnnotations: { 'sidecar.istio.io/inject': 'false', note: 'x' },
      },
    ],
  ])('%s', (_, env, image) => {
    expect(parseBuilderConfig({ ...required, ...kaniko, ...env }).image).toEqual(image);
  });

  it.each([
    [{ KANIKO_REGISTRY_SECRET: '' }, 'KANIKO_REGISTRY_SECRET is required with IMAGE_BACKEND=kaniko (a kubernetes.io/dockerconfigjson Secret'],
    [{ KANIKO_S3_SECRET: ' ' }, 'KANIKO_S3_SECRET is required with IMAGE_BACKEND=kaniko (a Secret in the Jobs\' namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY'],
    [{ KANIKO_REGISTRY_SECRET: 'Registry_Creds' }, 'KANIKO_REGISTRY_SECRET must be a Secret name (a DNS subdomain: a-z, 0-9, - and ., at most 253), not "Registry_Creds"'],
    [{ KANIKO_S3_SECRET: 'a'.repeat(254) }, 'KANIKO_S3_SECRET must be a Secret name'],
    [{ KANIKO_NAMESPACE: 'Builds' }, 'KANIKO_NAMESPACE must be a namespace name (a DNS label: a-z, 0-9, -, at most 63), not "Builds"'],
    [{ KANIKO_NAMESPACE: 'a'.repeat(64) }, 'KANIKO_NAMESPACE must be a namespace name'],
    [{ KANIKO_IMAGE: 'https://ghcr.io/kaniko' }, 'KANIKO_IMAGE must be an image reference such as ghcr.io/osscontainertools/kaniko:v1.28.3, not "https://ghcr.io/kaniko"'],
    [{ KANIKO_IMAGE: 'Kaniko:latest' }, 'KANIKO_IMAGE must be an image reference'],
    [{ KANIKO_S3_ENDPOINT: 'minio:9000' }, 'KANIKO_S3_ENDPOINT must be http(s)://host[:port] (the S3 endpoint as the build pod reaches it), not "minio:9000"'],
    [{ KANIKO_S3_ENDPOINT: 'http://minio:9000/bucket' }, 'KANIKO_S3_ENDPOINT must be http(s)://host[:port]'],
    [{ KANIKO_CONTEXT_PREFIX: '../up' }, 'KANIKO_CONTEXT_PREFIX must be an S3 key prefix such as kaniko-contexts/'],
    [{ KANIKO_CONTEXT_PREFIX: '/abs' }, 'KANIKO_CONTEXT_PREFIX must be an S3 key prefix'],
    [{ KANIKO_CPU_REQUEST: 'lots' }, 'KANIKO_CPU_REQUEST must be a Kubernetes quantity such as 500m, 2, 512Mi or 2Gi (or none), not "lots"'],
    [{ KANIKO_MEMORY_LIMIT: '2GB' }, 'KANIKO_MEMORY_LIMIT must be a Kubernetes quantity'],
    [{ KANIKO_MEMORY_REQUEST: '4Gi' }, 'KANIKO_MEMORY_REQUEST (4Gi) is more than KANIKO_MEMORY_LIMIT (2Gi): the API server refuses such a pod'],
    [{ KANIKO_CPU_REQUEST: '2', KANIKO_CPU_LIMIT: '1500m' }, 'KANIKO_CPU_REQUEST (2) is more than KANIKO_CPU_LIMIT (1500m)'],
    [{ KANIKO_DEADLINE_SECONDS: '0' }, 'KANIKO_DEADLINE_SECONDS must be a whole number of seconds from 1 to 86400, not "0"'],
    [{ KANIKO_DEADLINE_SECONDS: '1.5' }, 'KANIKO_DEADLINE_SECONDS must be a whole number of seconds'],
    [{ KANIKO_TTL_SECONDS: '-1' }, 'KANIKO_TTL_SECONDS must be a whole number of seconds from 1 to 604800, not "-1"'],
    [{ KANIKO_POD_ANNOTATIONS: '{"a":' }, 'KANIKO_POD_ANNOTATIONS must be a JSON object of strings, for example {"sidecar.istio.io/inject":"false"}:'],
    [{ KANIKO_POD_ANNOTATIONS: '{"a":false}' }, 'KANIKO_POD_ANNOTATIONS must be a JSON object of strings, for example {"sidecar.istio.io/inject":"false"}, not {"a":false}'],
    [{ KANIKO_POD_ANNOTATIONS: '["a"]' }, 'KANIKO_POD_ANNOTATIONS must be a JSON object of strings'],
    [{ KANIKO_POD_ANNOTATIONS: '{"bad key":"x"}' }, 'KANIKO_POD_ANNOTATIONS: "bad key" is not a valid annotation key'],
    [{ KANIKO_POD_ANNOTATIONS: '{"Example.com/x":"y"}' }, 'KANIKO_POD_ANNOTATIONS: "Example.com/x" is not a valid annotation key'],
    [{ IMAGE_REGISTRY_USERNAME: 'builder' }, 'IMAGE_REGISTRY_USERNAME is set but IMAGE_BACKEND is kaniko: the build pod\'s registry credentials come from the Secret KANIKO_REGISTRY_SECRET names'],
    [{ IMAGE_REGISTRY_PASSWORD: 'x' }, 'IMAGE_REGISTRY_PASSWORD is set but IMAGE_BACKEND is kaniko'],
    [{ IMAGE_REGISTRY_URL: '' }, 'IMAGE_REGISTRY_URL is required with IMAGE_BACKEND=kaniko (http(s)://host[:port] of the registry, as the build pod reaches it)'],
    [{ IMAGE_REGISTRY_URL: 'http://registry:5000' }, 'IMAGE_REGISTRY_URL is plain http ("http://registry:5000"): set IMAGE_REGISTRY_INSECURE=true to allow it, or use https'],
    [{ IMAGE_BASE: 'runner' }, 'IMAGE_BASE must be repo:tag or repo@sha256:<64 hex>'],
    [{ ARTIFACT_STORE_URL: 'file:///tmp/assets' }, 'IMAGE_BACKEND=kaniko needs an S3 artifact store (ARTIFACT_STORE_URL=s3://bucket/...): the build pod reads its context from that bucket'],
  ])('refuses %j', (env, problem) => {
    expect(() => parseBuilderConfig({ ...required, ...kaniko, ...env })).toThrow(problem);
  });

  it('reports every kaniko problem at once', () => {
    expect(() => parseBuilderConfig({ ...required, ...kaniko, KANIKO_NAMESPACE: 'X', KANIKO_TTL_SECONDS: 'soon' })).toThrow(
      'builder: invalid configuration:\n  - KANIKO_NAMESPACE must be a namespace name (a DNS label: a-z, 0-9, -, at most 63), not "X"\n  - KANIKO_TTL_SECONDS must be a whole number of seconds from 1 to 604800, not "soon"',
    );
  });
});
