// The contract between api-controller (which requests builds) and builder (which runs them).

export const BUILD_QUEUE = 'builds';
/** BullMQ's key prefix, given explicitly so the Redis users' rules (libs/redis-acl) name the same keys. */
export const BUILD_QUEUE_PREFIX = 'bull';

export interface LambdaRef {
  namespace: string;
  name: string;
}

export interface BuildJobData {
  lambda: LambdaRef;
  /** Digest of everything the asset is built from (see sourceDigest). */
  sourceDigest: string;
  runtime: 'nodejs';
  files: Record<string, string>;
  entrypoint: string;
  typeCheck: boolean;
}

/** Why a build failed because of the user's source; a permanent outcome, never retried. */
export type BuildFailureReason = 'CompileFailed' | 'DependencyInstallFailed' | 'NoDefaultExport' | 'InvalidSource';

export type BuildJobResult =
  | { outcome: 'built'; artifact: { digest: string; size: number }; warnings: string[] }
  | { outcome: 'failed'; reason: BuildFailureReason; message: string };

/**
 * One job per lambda and source: the same source requested twice is one job. BullMQ ids may
 * not contain ':', and namespaces and lambda names cannot contain '/'.
 */
export function buildJobId(lambda: LambdaRef, sourceDigest: string): string {
  return `${lambda.namespace}/${lambda.name}/${sourceDigest.replace(/^sha256:/, '')}`;
}

export function lambdaOfBuildJobId(jobId: string): LambdaRef | undefined {
  const [namespace, name, digest] = jobId.split('/');
  return namespace && name && digest ? { namespace, name } : undefined;
}
