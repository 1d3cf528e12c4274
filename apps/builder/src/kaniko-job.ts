// The Kaniko Job of one image job, and what its status says: pure functions of the
// configuration and the objects read from the API server (tested with tables in
// kaniko-job.test.ts); kaniko-backend.ts does the I/O.
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { LambdaRef } from '@kublambda/build-queue';
import type { KanikoImageBackendConfig } from './kaniko-config.ts';

export const KANIKO_CONTAINER = 'kaniko';
export const LAMBDA_NAMESPACE_LABEL = 'kublambda.io/lambda-namespace';
export const LAMBDA_NAME_LABEL = 'kublambda.io/lambda-name';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const KANIKO_COMPONENT = 'kaniko-build';
/** The BullMQ id of the image job the Job builds (ids hold '/', which labels may not). */
export const IMAGE_JOB_ANNOTATION = 'kublambda.io/image-job';
const DOCKER_CONFIG_VOLUME = 'registry-credentials';
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 63;
const HASH_LENGTH = 12;
/** How much of a failed build's message goes into the result. */
export const MAX_FAILURE_MESSAGE = 2_000;

/**
 * The Job's name: `kaniko-<namespace>-<name>` cut to fit, then a hash of the whole image job id
 * (lambda, asset and repository), so each image job has one name, always the same, and two
 * never share one. A DNS label of at most 63 characters.
 */
export function kanikoJobName(imageJobId: string, lambda: LambdaRef): string {
  const hash = createHash('sha256').update(imageJobId).digest('hex').slice(0, HASH_LENGTH);
  const room = MAX_NAME - 'kaniko-'.length - 1 - HASH_LENGTH;
  const readable = `${lambda.namespace}-${lambda.name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, room).replace(/-+$/, '');
  return readable ? `kaniko-${readable}-${hash}` : `kaniko-${hash}`;
}

/** The object key of a Job's build context. */
export function kanikoContextKey(config: Pick<KanikoImageBackendConfig, 'context'>, jobName: string): string {
  return `${config.context.prefix}${jobName}.tar.gz`;
}

export interface KanikoJobInput {
  jobName: string;
  imageJobId: string;
  lambda: LambdaRef;
  /** `<repository>:<tag>` within the registry. */
  target: string;
}

/** The batch/v1 Job that builds the image: context from S3, destination the registry, no retries of its own. */
export function desiredKanikoJob(config: KanikoImageBackendConfig, input: KanikoJobInput): k8s.V1Job {
  const labels = {
    'app.kubernetes.io/name': 'kaniko',
    [COMPONENT_LABEL]: KANIKO_COMPONENT,
    'app.kubernetes.io/managed-by': 'kublambda-builder',
    [LAMBDA_NAMESPACE_LABEL]: input.lambda.namespace,
    [LAMBDA_NAME_LABEL]: input.lambda.name,
  };
  const { host, insecure } = config.registry;
  const args = [
    `--context=s3://${config.context.bucket}/${kanikoContextKey(config, input.jobName)}`,
    '--dockerfile=Dockerfile',
    `--destination=${host}/${input.target}`,
    // The kubelet makes the file's content the container's termination message.
    '--digest-file=/dev/termination-log',
    ...(insecure ? ['--insecure', '--insecure-pull'] : []),
  ];
  const secretEnv = (name: string): k8s.V1EnvVar => ({ name, valueFrom: { secretKeyRef: { name: config.s3Secret, key: name } } });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: input.jobName, namespace: config.namespace, labels, annotations: { [IMAGE_JOB_ANNOTATION]: input.imageJobId } },
    spec: {
      // Retries belong to the queue.
      backoffLimit: 0,
      activeDeadlineSeconds: config.activeDeadlineSeconds,
      ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
      template: {
        metadata: { labels, ...(Object.keys(config.podAnnotations).length > 0 ? { annotations: config.podAnnotations } : {}) },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          containers: [
            {
              name: KANIKO_CONTAINER,
              image: config.image,
              args,
              env: [
                { name: 'S3_ENDPOINT', value: config.context.endpoint },
                { name: 'S3_FORCE_PATH_STYLE', value: 'true' },
                { name: 'AWS_REGION', value: config.context.region },
                secretEnv('AWS_ACCESS_KEY_ID'),
                secretEnv('AWS_SECRET_ACCESS_KEY'),
              ],
              resources: config.resources,
              terminationMessagePath: '/dev/termination-log',
              // A failed build's log tail becomes the message when kaniko wrote no digest.
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts: [{ name: DOCKER_CONFIG_VOLUME, mountPath: '/kaniko/.docker', readOnly: true }],
            },
          ],
          volumes: [{ name: DOCKER_CONFIG_VOLUME, secret: { secretName: config.registrySecret, items: [{ key: '.dockerconfigjson', path: 'config.json' }] } }],
        },
      },
    },
  };
}

export type KanikoJobState =
  | { state: 'running' }
  | { state: 'succeeded'; digest: string }
  | { state: 'failed'; message: string };

/**
 * What a Job and its pods say: running until the Job controller sets Complete or Failed; on
 * Complete the pushed digest from the container's termination message (what --digest-file
 * wrote), on Failed what kaniko said (its termination message: the log tail when it wrote
 * none) or why the Job controller gave up.
 */
export function readKanikoJobState(job: k8s.V1Job, pods: readonly k8s.V1Pod[]): KanikoJobState {
  const complete = finishedCondition(job, 'Complete');
  const failed = finishedCondition(job, 'Failed');
  if (!complete && !failed) return { state: 'running' };
  const terminated = pods.map(kanikoTermination).filter((state) => state !== undefined);
  if (complete) {
    const message = terminated.find((state) => state.exitCode === 0)?.message?.trim() ?? '';
    if (DIGEST.test(message)) return { state: 'succeeded', digest: message };
    return { state: 'failed', message: `kaniko finished but its termination message is not an image digest (sha256:<64 hex>): ${JSON.stringify(clip(message))}` };
  }
  const said = terminated.find((state) => state.exitCode !== 0) ?? terminated[0];
  const why = [
    failed!.reason ? `${failed!.reason}${failed!.message ? `: ${failed!.message}` : ''}` : failed!.message,
    said ? `exit code ${said.exitCode}${said.reason ? ` (${said.reason})` : ''}` : undefined,
  ].filter(Boolean);
  const message = said?.message?.trim();
  return { state: 'failed', message: `${why.join(', ')}${message ? `; kaniko said: ${clip(message)}` : ''}` };
}

/** How the Job ended, from its conditions alone: undefined while it runs (interim conditions such as FailureTarget included). */
export function kanikoJobEnd(job: k8s.V1Job): 'Complete' | 'Failed' | undefined {
  return finishedCondition(job, 'Complete') ? 'Complete' : finishedCondition(job, 'Failed') ? 'Failed' : undefined;
}

function finishedCondition(job: k8s.V1Job, type: 'Complete' | 'Failed'): k8s.V1JobCondition | undefined {
  return job.status?.conditions?.find((condition) => condition.type === type && condition.status === 'True');
}

function kanikoTermination(pod: k8s.V1Pod): k8s.V1ContainerStateTerminated | undefined {
  return pod.status?.containerStatuses?.find((status) => status.name === KANIKO_CONTAINER)?.state?.terminated;
}

/** The last MAX_FAILURE_MESSAGE characters: a log tail's end says what went wrong. */
function clip(text: string): string {
  return text.length > MAX_FAILURE_MESSAGE ? `...${text.slice(-MAX_FAILURE_MESSAGE)}` : text;
}

/** A pod of the Job whose container failed without a termination message: its log may say more. */
export function podToReadLogsOf(pods: readonly k8s.V1Pod[]): string | undefined {
  return pods.find((pod) => {
    const terminated = kanikoTermination(pod);
    return terminated !== undefined && terminated.exitCode !== 0 && !terminated.message?.trim();
  })?.metadata?.name;
}
