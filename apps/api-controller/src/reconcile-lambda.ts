import type { Condition, Lambda, LambdaStatus } from '@kublambda/crd-types';
import { buildJobId, type BuildJobData, type BuildJobResult, type LambdaRef } from '@kublambda/build-queue';
import { forLambda, type Logger } from '@kublambda/logging';
import type { ReconcileResult } from '@kublambda/reconcile-runtime';
import type { RouteRecord } from '@kublambda/route-table';
import { conditionOf, conditionTransitions, readiness, setCondition, type ConditionUpdate } from './conditions.ts';
import { desiredRoute } from './desired-route.ts';
import { resolveSource, sourceDigest, SourceUnavailableError, type ReadConfigMap } from './source.ts';

export const FINALIZER = 'kublambda.io/cleanup';

/** How often to look again while a build runs or a source is missing, besides the queue's own events. */
export const POLL_INTERVAL_MS = 30_000;
/** How often to look again while a deleted lambda waits for its running build to finish. */
export const CLEANUP_POLL_MS = 1_000;

export type BuildState =
  | { state: 'absent' }
  | { state: 'pending' }
  | { state: 'done'; result: BuildJobResult }
  | { state: 'error'; message: string };

export interface LambdaReconcilerDeps {
  lambdas: {
    get(namespace: string, name: string): Promise<Lambda | undefined>;
    /** Replaces metadata.finalizers, failing on a concurrent change. */
    setFinalizers(lambda: Lambda, finalizers: string[]): Promise<Lambda>;
    /** Replaces the status through the status subresource, failing on a concurrent change. */
    writeStatus(lambda: Lambda, status: LambdaStatus): Promise<void>;
    /** Whether any lambda other than `exceptKey` serves this asset. */
    otherServes(digest: string, exceptKey: string): boolean;
  };
  readConfigMap: ReadConfigMap;
  builds: {
    state(jobId: string): Promise<BuildState>;
    request(jobId: string, data: BuildJobData): Promise<void>;
    forget(jobId: string): Promise<void>;
    /** Removes every build job of the lambda; reports whether one is running and which assets finished jobs made. */
    forgetAll(lambda: LambdaRef): Promise<{ running: boolean; builtDigests: string[] }>;
  };
  assets: { has(digest: string): Promise<boolean>; delete(digest: string): Promise<void> };
  routes: { read(key: string): Promise<RouteRecord | undefined>; publish(route: RouteRecord): Promise<void>; remove(key: string): Promise<void> };
  events: { record(lambda: Lambda, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> };
  logger: Logger;
  now(): Date;
}

const PERMANENT_BUILD_FAILURES = new Set(['CompileFailed', 'DependencyInstallFailed', 'NoDefaultExport', 'InvalidSource']);

/**
 * Brings one Lambda to its desired state: source built into an asset, route published,
 * conditions written. Reads everything afresh; safe to run any number of times.
 */
export async function reconcileLambda(key: string, deps: LambdaReconcilerDeps): Promise<ReconcileResult | void> {
  const [namespace, name] = key.split('/') as [string, string];
  const found = await deps.lambdas.get(namespace, name);
  if (!found) {
    // Deleted after the finalizer ran (or without it): make sure no route outlives it.
    await deps.routes.remove(key);
    return;
  }
  if (found.metadata.deletionTimestamp) return cleanUpLambda(found, key, deps);

  const finalizers = found.metadata.finalizers ?? [];
  // The finalizer goes on before anything outside Kubernetes is created for the lambda.
  const lambda = finalizers.includes(FINALIZER) ? found : await deps.lambdas.setFinalizers(found, [...finalizers, FINALIZER]);
  const generation = lambda.metadata.generation ?? 0;
  const now = deps.now();
  const before = lambda.status ?? {};
  let conditions: Condition[] = before.conditions ?? [];
  const set = (update: ConditionUpdate) => (conditions = setCondition(conditions, update, generation, now));
  const status: LambdaStatus = { ...before };
  let requeueAfterMs: number | undefined;

  const build = await reconcileBuild(lambda, key, before, deps);
  set(build.condition);
  if (build.sourceDigest) status.sourceDigest = build.sourceDigest;
  if (build.artifact) status.artifact = build.artifact;
  if (build.pollAgain) requeueAfterMs = POLL_INTERVAL_MS;

  if (status.artifact) {
    const route = desiredRoute(lambda, status.artifact);
    const published = await deps.routes.read(key);
    if (!published || JSON.stringify(published) !== JSON.stringify(route)) await deps.routes.publish(route);
    set({ type: 'Routed', status: 'True', reason: 'Published', message: `${route.pathPrefix} is served by ${route.artifact.digest}` });
    // The old asset goes now, not after the status write: if this pass fails after it, the
    // next one still sees the old digest in status and deletes it again (a no-op).
    const replaced = before.artifact?.digest;
    if (replaced && replaced !== status.artifact.digest) await deleteAssetUnlessServed(replaced, key, deps);
  } else {
    set({ type: 'Routed', status: build.condition.status === 'False' ? 'False' : 'Unknown', reason: 'NotBuilt', message: 'no asset has been built for this lambda yet' });
  }
  set(readiness(conditions));

  status.conditions = conditions;
  status.observedGeneration = generation;
  if (JSON.stringify(status) !== JSON.stringify(before)) {
    await deps.lambdas.writeStatus(lambda, status);
    for (const changed of conditionTransitions(before.conditions ?? [], conditions)) {
      await deps.events.record(lambda, changed.status === 'False' ? 'Warning' : 'Normal', changed.reason, `${changed.type}=${changed.status}: ${changed.message}`);
    }
  }
  // The job's outcome is in the status now; until then a failed pass can read it again.
  if (build.consumedJobId) await deps.builds.forget(build.consumedJobId);
  return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
}

interface BuildOutcome {
  condition: ConditionUpdate;
  sourceDigest?: string;
  artifact?: { digest: string; size: number };
  /** A finished build job whose result this pass records; removed once the status is written. */
  consumedJobId?: string;
  pollAgain?: boolean;
}

async function reconcileBuild(lambda: Lambda, key: string, before: LambdaStatus, deps: LambdaReconcilerDeps): Promise<BuildOutcome> {
  let source;
  try {
    source = await resolveSource(lambda, deps.readConfigMap);
  } catch (error) {
    if (!(error instanceof SourceUnavailableError)) throw error;
    return { condition: { type: 'Built', status: 'False', reason: error.reason, message: error.message }, pollAgain: true };
  }
  const digest = sourceDigest(source);
  const built = conditionOf(before.conditions, 'Built');
  if (before.sourceDigest === digest && built?.status === 'True' && before.artifact && (await deps.assets.has(before.artifact.digest))) {
    return { condition: { type: 'Built', status: 'True', reason: built.reason, message: built.message } };
  }
  if (before.sourceDigest === digest && built?.status === 'False' && PERMANENT_BUILD_FAILURES.has(built.reason)) {
    return { condition: { type: 'Built', status: 'False', reason: built.reason, message: built.message } };
  }

  const lambdaRef = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  const jobId = buildJobId(lambdaRef, digest);
  const job = await deps.builds.state(jobId);
  const building: BuildOutcome = {
    condition: { type: 'Built', status: 'Unknown', reason: 'Building', message: `building source ${digest}` },
    pollAgain: true,
  };
  switch (job.state) {
    case 'absent':
      await deps.builds.request(jobId, { lambda: lambdaRef, sourceDigest: digest, ...source });
      forLambda(deps.logger, lambdaRef).info('requested build', { sourceDigest: digest });
      return building;
    case 'pending':
      return building;
    case 'error':
      // Retries are exhausted for a failure that was not the source's fault: report it and
      // build again later, from scratch.
      await deps.builds.forget(jobId);
      return { condition: { type: 'Built', status: 'False', reason: 'BuildError', message: job.message }, pollAgain: true };
    case 'done': {
      const { result } = job;
      if (result.outcome === 'failed') {
        return { condition: { type: 'Built', status: 'False', reason: result.reason, message: result.message }, sourceDigest: digest, consumedJobId: jobId };
      }
      if (!(await deps.assets.has(result.artifact.digest))) {
        // The asset vanished between build and now; build it again.
        await deps.builds.forget(jobId);
        return building;
      }
      return {
        condition: { type: 'Built', status: 'True', reason: 'Built', message: `source ${digest} built into ${result.artifact.digest} (${result.artifact.size} bytes)` },
        sourceDigest: digest,
        artifact: result.artifact,
        consumedJobId: jobId,
      };
    }
  }
}

/** What the finalizer guards: builds, the route and the asset. Kubernetes removes the rest. */
async function cleanUpLambda(lambda: Lambda, key: string, deps: LambdaReconcilerDeps): Promise<ReconcileResult | void> {
  const finalizers = lambda.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return;
  const lambdaRef = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  const { running, builtDigests } = await deps.builds.forgetAll(lambdaRef);
  // A running build would store an asset after we looked: wait for it, then clean that too.
  if (running) return { requeueAfterMs: CLEANUP_POLL_MS };
  await deps.routes.remove(key);
  const digests = new Set([...builtDigests, ...(lambda.status?.artifact ? [lambda.status.artifact.digest] : [])]);
  for (const digest of digests) await deleteAssetUnlessServed(digest, key, deps);
  await deps.lambdas.setFinalizers(lambda, finalizers.filter((f) => f !== FINALIZER));
  forLambda(deps.logger, lambdaRef).info('cleaned up deleted lambda', { assets: [...digests] });
}

async function deleteAssetUnlessServed(digest: string, key: string, deps: LambdaReconcilerDeps): Promise<void> {
  if (deps.lambdas.otherServes(digest, key)) return;
  await deps.assets.delete(digest);
}
