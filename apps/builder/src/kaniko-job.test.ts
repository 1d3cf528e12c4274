import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { parseArtifactStoreConfig } from '@kublambda/artifact-store';
import { imageJobId } from '@kublambda/build-queue';
import { parseImageBackendConfig } from './config.ts';
import type { KanikoImageBackendConfig } from './kaniko-config.ts';
import { desiredKanikoJob, kanikoContextKey, kanikoJobEnd, kanikoJobName, podToReadLogsOf, readKanikoJobState } from './kaniko-job.ts';

// As the builder parses it from its environment.
const parsed = parseImageBackendConfig(
  {
    IMAGE_BACKEND: 'kaniko',
    IMAGE_REGISTRY_URL: 'http://registry.kublambda-system:5000',
    IMAGE_REGISTRY_INSECURE: 'true',
    IMAGE_BASE: 'kublambda/runner-base:v1',
    KANIKO_REGISTRY_SECRET: 'kaniko-registry',
    KANIKO_S3_SECRET: 'kaniko-s3',
    KANIKO_S3_ENDPOINT: 'http://minio:9000',
  },
  parseArtifactStoreConfig({ ARTIFACT_STORE_URL: 's3://lambdas/assets', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' }),
);
if (parsed.backend !== 'kaniko') throw new Error('not kaniko');
const config: KanikoImageBackendConfig = parsed;
const lambda = { namespace: 'shop', name: 'hello' };
const id = imageJobId(lambda, `sha256:${'a'.repeat(64)}`, 'kublambda/shop-hello');
const digest = `sha256:${'d'.repeat(64)}`;

describe('kanikoJobName', () => {
  const long = { namespace: 'n'.repeat(63), name: 'l'.repeat(53) };
  it.each([
    ['a short lambda', id, lambda, /^kaniko-shop-hello-[a-f0-9]{12}$/],
    ['a long lambda, cut to fit', imageJobId(long, `sha256:${'a'.repeat(64)}`, 'r'), long, /^kaniko-n{43}-[a-f0-9]{12}$/],
    ['a cut that would end on a hyphen', 'x', { namespace: 'a'.repeat(42), name: 'b' }, /^kaniko-a{42}-[a-f0-9]{12}$/],
  ])('%s', (_, jobId, ref, pattern) => {
    const name = kanikoJobName(jobId, ref);
    expect(name).toMatch(pattern);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('is the same for the same image job, and differs for another asset or repository', () => {
    expect(kanikoJobName(id, lambda)).toBe(kanikoJobName(id, lambda));
    expect(kanikoJobName(imageJobId(lambda, `sha256:${'b'.repeat(64)}`, 'kublambda/shop-hello'), lambda)).not.toBe(kanikoJobName(id, lambda));
    expect(kanikoJobName(imageJobId(lambda, `sha256:${'a'.repeat(64)}`, 'other/shop-hello'), lambda)).not.toBe(kanikoJobName(id, lambda));
  });
});

describe('desiredKanikoJob', () => {
  const input = { jobName: 'kaniko-shop-hello-0123456789ab', imageJobId: id, lambda, target: `kublambda/shop-hello:${'a'.repeat(64)}` };

  it('builds from the S3 context, pushes to the registry, reports the digest, and retries nothing itself', () => {
    const job = desiredKanikoJob(config, input);
    const labels = {
      'app.kubernetes.io/name': 'kaniko',
      'app.kubernetes.io/component': 'kaniko-build',
      'app.kubernetes.io/managed-by': 'kublambda-builder',
      'kublambda.io/lambda-namespace': 'shop',
      'kublambda.io/lambda-name': 'hello',
    };
    expect(job).toEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: input.jobName, namespace: 'kublambda-system', labels, annotations: { 'kublambda.io/image-job': id } },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 900,
        ttlSecondsAfterFinished: 3600,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            containers: [
              {
                name: 'kaniko',
                image: 'ghcr.io/osscontainertools/kaniko:v1.28.3',
                args: [
                  '--context=s3://lambdas/kaniko-contexts/kaniko-shop-hello-0123456789ab.tar.gz',
                  '--dockerfile=Dockerfile',
                  `--destination=registry.kublambda-system:5000/kublambda/shop-hello:${'a'.repeat(64)}`,
                  '--digest-file=/dev/termination-log',
                  '--insecure',
                  '--insecure-pull',
                ],
                env: [
                  { name: 'S3_ENDPOINT', value: 'http://minio:9000' },
                  { name: 'S3_FORCE_PATH_STYLE', value: 'true' },
                  { name: 'AWS_REGION', value: 'us-east-1' },
                  { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'kaniko-s3', key: 'AWS_ACCESS_KEY_ID' } } },
                  { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'kaniko-s3', key: 'AWS_SECRET_ACCESS_KEY' } } },
                ],
                resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
                terminationMessagePath: '/dev/termination-log',
                terminationMessagePolicy: 'FallbackToLogsOnError',
                volumeMounts: [{ name: 'registry-credentials', mountPath: '/kaniko/.docker', readOnly: true }],
              },
            ],
            volumes: [{ name: 'registry-credentials', secret: { secretName: 'kaniko-registry', items: [{ key: '.dockerconfigjson', path: 'config.json' }] } }],
          },
        },
      },
    });
  });

  it.each([
    ['an https registry gets no --insecure flags', { registry: { host: 'registry.example.com', insecure: false } }, (job: k8s.V1Job) => job.spec!.template.spec!.containers[0]!.args!.filter((arg) => arg.startsWith('--insecure')), []],
    ['pod annotations go on the pod template', { podAnnotations: { 'sidecar.istio.io/inject': 'false' } }, (job: k8s.V1Job) => job.spec!.template.metadata!.annotations, { 'sidecar.istio.io/inject': 'false' }],
    ['the context prefix names the object', { context: { ...config.context, prefix: 'tmp/' } }, (job: k8s.V1Job) => job.spec!.template.spec!.containers[0]!.args![0], '--context=s3://lambdas/tmp/kaniko-shop-hello-0123456789ab.tar.gz'],
  ])('%s', (_, overrides, pick, expected) => {
    expect(pick(desiredKanikoJob({ ...config, ...overrides }, input))).toEqual(expected);
  });

  it('names the context object after the Job', () => {
    expect(kanikoContextKey(config, input.jobName)).toBe('kaniko-contexts/kaniko-shop-hello-0123456789ab.tar.gz');
  });
});

describe('readKanikoJobState', () => {
  const job = (...conditions: Array<[string, string?, string?]>): k8s.V1Job => ({
    status: { conditions: conditions.map(([type, reason, message]) => ({ type, status: 'True', ...(reason ? { reason } : {}), ...(message ? { message } : {}) })) },
  });
  const pod = (name: string, terminated?: Partial<k8s.V1ContainerStateTerminated>, container = 'kaniko'): k8s.V1Pod => ({
    metadata: { name },
    status: { containerStatuses: [{ name: container, image: 'kaniko', imageID: '', ready: false, restartCount: 0, state: terminated ? { terminated: { exitCode: 0, ...terminated } } : { running: {} } }] },
  });

  it.each<[string, k8s.V1Job, k8s.V1Pod[], ReturnType<typeof readKanikoJobState>]>([
    ['no conditions yet', job(), [], { state: 'running' }],
    ['only interim conditions', job(['SuccessCriteriaMet'], ['FailureTarget']), [pod('p')], { state: 'running' }],
    ['complete, the digest in the termination message', job(['Complete']), [pod('p', { message: `${digest}\n` })], { state: 'succeeded', digest }],
    ['complete, no message', job(['Complete']), [pod('p', {})], { state: 'failed', message: 'kaniko finished but its termination message is not an image digest (sha256:<64 hex>): ""' }],
    ['complete, a message that is no digest', job(['Complete']), [pod('p', { message: 'sha256:abc' })], { state: 'failed', message: 'kaniko finished but its termination message is not an image digest (sha256:<64 hex>): "sha256:abc"' }],
    ['complete, but the pods are gone', job(['Complete']), [], { state: 'failed', message: 'kaniko finished but its termination message is not an image digest (sha256:<64 hex>): ""' }],
    [
      'failed, kaniko said why',
      job(['Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit']),
      [pod('p', { exitCode: 1, reason: 'Error', message: 'error building image: MANIFEST_UNKNOWN: base not found' })],
      { state: 'failed', message: 'BackoffLimitExceeded: Job has reached the specified backoff limit, exit code 1 (Error); kaniko said: error building image: MANIFEST_UNKNOWN: base not found' },
    ],
    ['failed past its deadline, no pod left', job(['Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline']), [], { state: 'failed', message: 'DeadlineExceeded: Job was active longer than specified deadline' }],
    ['failed, another container\'s status is not kaniko\'s', job(['Failed', 'BackoffLimitExceeded']), [pod('p', { exitCode: 2, message: 'sidecar' }, 'istio-proxy')], { state: 'failed', message: 'BackoffLimitExceeded' }],
  ])('%s', (_, theJob, pods, expected) => {
    expect(readKanikoJobState(theJob, pods)).toEqual(expected);
  });

  it.each([
    ['running', job(), undefined],
    ['interim conditions only', job(['SuccessCriteriaMet'], ['FailureTarget']), undefined],
    ['complete', job(['SuccessCriteriaMet'], ['Complete']), 'Complete'],
    ['failed', job(['FailureTarget'], ['Failed']), 'Failed'],
  ])('kanikoJobEnd: %s', (_, theJob, expected) => {
    expect(kanikoJobEnd(theJob)).toBe(expected);
  });

  it('keeps the end of a long log tail', () => {
    const state = readKanikoJobState(job(['Failed', 'BackoffLimitExceeded']), [pod('p', { exitCode: 1, message: `${'x'.repeat(5000)}the end` })]);
    expect(state.state === 'failed' && state.message.endsWith('the end')).toBe(true);
    expect(state.state === 'failed' && state.message.length).toBeLessThan(2_100);
  });

  it.each([
    ['a failed container without a message', [pod('a', { exitCode: 0, message: digest }), pod('b', { exitCode: 1 })], 'b'],
    ['none when the failure has a message', [pod('a', { exitCode: 1, message: 'said' })], undefined],
    ['none while running', [pod('a')], undefined],
  ])('podToReadLogsOf: %s', (_, pods, expected) => {
    expect(podToReadLogsOf(pods)).toBe(expected);
  });
});
