import type { Condition, Lambda, LambdaStatus } from '@kublambda/crd-types';
import { buildJobId, type BuildJobData, type BuildJobResult, type ImageJobData, type LambdaRef } from '@kublambda/build-queue';
import { forLambda, type Logger } from '@kublambda/logging';
import type { ReconcileResult } from '@kublambda/reconcile-runtime';
import { normalizePathPrefix, routeClaim, type ClaimOptions, type ClaimOutcome, type EnvKeyRing, type RouteRecord } from '@kublambda/route-table';
import { conditionOf, conditionTransitions, readiness, removeCondition, setCondition, type ConditionUpdate } from './conditions.ts';
import { describeClaim, describeClaimConflict, desiredClaim, desiredRoute } from './desired-route.ts';
import { ensureHttpExposure, removeHttpExposure, type HttpExposureDeps } from './ensure-http-exposure.ts';
import { forgetWatcher, reconcileWatchers, type WatcherDeps } from './ensure-watchers.ts';
import { lambdaPath } from './http-exposure.ts';
import {
  decideImage,
  desiredImageJob,
  imageJobOutcome,
  imageRepository,
  mountSources,
  parseImageReference,
  referencedByOther,
  sameImage,
  supersededImages,
  type ImageJobState,
} from './lambda-image.ts';
import { encryptSecretValues, EnvReferenceError, resolveEnv, type ReadSecret, type ResolvedEnvEntry } from './lambda-env.ts';
import { decidePath, firstPathSegment, isNamespaceName, type PathDecision, type PathPolicy } from './path-ownership.ts';
import { resolveSource, sourceDigest, SourceUnavailableError, type ReadConfigMap } from './source.ts';
import { tablesToDelete } from './state-retention.ts';

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
    /** Every lambda of the namespace as the API server has them now, not from a cache. */
    listInNamespace(namespace: string): Promise<Lambda[]>;
    /** Every lambda, from the informer cache. */
    cached(): ReadonlyArray<Lambda>;
    /**
     * Sets the lambda's superseded-images annotation (removed when empty). Not conditional:
     * only this controller writes it, one pass per lambda at a time.
     */
    setSupersededImages(lambda: Lambda, images: string[]): Promise<Lambda>;
  };
  readConfigMap: ReadConfigMap;
  readSecret: ReadSecret;
  /** Encrypts the values taken from Secrets in route records. */
  envKeys: EnvKeyRing;
  builds: {
    state(jobId: string): Promise<BuildState>;
    request(jobId: string, data: BuildJobData): Promise<void>;
    forget(jobId: string): Promise<void>;
    /** Removes every build job of the lambda; reports whether one is running and which assets finished jobs made. */
    forgetAll(lambda: LambdaRef): Promise<{ running: boolean; builtDigests: string[] }>;
  };
  assets: { has(digest: string): Promise<boolean>; delete(digest: string): Promise<void> };
  /** Container images of lambdas; undefined with IMAGE_BUILDS=off. Image jobs are forgotten through `builds`. */
  images?: {
    repositoryPrefix: string;
    state(jobId: string): Promise<ImageJobState>;
    request(jobId: string, data: ImageJobData): Promise<void>;
    /** The images the lambda's finished image jobs pushed (jobs left as they are), and whether one runs. */
    pushedBy(lambda: LambdaRef): Promise<{ running: boolean; images: string[] }>;
    /** Deletes a manifest by digest; false when it was gone already. Throws when the registry cannot be asked. */
    deleteManifest(repository: string, digest: string): Promise<boolean>;
  };
  routes: {
    read(key: string): Promise<RouteRecord | undefined>;
    publish(route: RouteRecord): Promise<void>;
    remove(key: string): Promise<void>;
    /** Claims host+path for the lambda (see claimRoute); refused while another lambda holds it, or a path above it of another namespace. */
    claim(key: string, claim: string, options: ClaimOptions): Promise<ClaimOutcome>;
    /** Gives up the lambda's claim; returns the claim released. */
    release(key: string): Promise<string | undefined>;
    /** Called once a claim is free, so lambdas that were refused it (or paths below it) try again. */
    onReleased(claim: string): void;
  };
  /** Which namespaces own which hosts and paths, from platform configuration. */
  paths: PathPolicy;
  namespaces: { exists(name: string): Promise<boolean> };
  http: HttpExposureDeps;
  /** Event-watchers of lambdas with watch triggers: their Kubernetes objects and Redis users. */
  watchers: WatcherDeps;
  /** Removes state tables and all their entries; removing an absent table does nothing. */
  state: { deleteTables(namespace: string, tables: readonly string[]): Promise<void> };
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
    // Deleted after the finalizer ran (or without it): make sure no route, claim or watcher user outlives it.
    await removeRouteAndClaim(key, deps);
    await forgetWatcher({ namespace, name }, deps.watchers);
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

  const route = await reconcileRoute(lambda, key, status.artifact, build.condition, deps);
  set(route.condition);
  if (route.url) status.url = route.url;
  else delete status.url;
  if (route.pollAgain) requeueAfterMs = POLL_INTERVAL_MS;
  // The old asset goes now, not after the status write: if this pass fails after it, the
  // next one still sees the old digest in status and deletes it again (a no-op).
  const replaced = before.artifact?.digest;
  if (route.published && replaced && replaced !== status.artifact?.digest) await deleteAssetUnlessServed(replaced, key, deps);

  const image = await reconcileImage(lambda, key, status.artifact, build.condition, before, deps);
  let superseded = supersededImages(lambda);
  if (image) {
    set(image.condition);
    if (image.image) status.image = image.image;
    if (image.pollAgain) requeueAfterMs = POLL_INTERVAL_MS;
  } else {
    // With IMAGE_BUILDS=off there is no ImageReady at all rather than True/Disabled: Ready keeps
    // meaning what it did (built and routed), `kubectl wait --for=condition=Ready` works as
    // before, and nothing claims an image is ready when there is none. status.image stays: the
    // image is still in the registry (deleted with the lambda once builds are on again).
    conditions = removeCondition(conditions, 'ImageReady');
  }
  // The replaced image is recorded on the Lambda before status forgets it, so a failure (or a
  // crash) between here and its deletion leaves it listed, to delete next pass or at cleanup.
  let annotated = lambda;
  if (image?.superseded && !superseded.includes(image.superseded)) {
    superseded = [...superseded, image.superseded];
    annotated = await deps.lambdas.setSupersededImages(lambda, superseded);
  }

  const watchers = await reconcileWatchers(lambda, conditionOf(before.conditions, 'WatchersReady') !== undefined, deps.watchers);
  if (watchers.condition) set(watchers.condition);
  else conditions = removeCondition(conditions, 'WatchersReady');
  set(readiness(conditions));

  status.conditions = conditions;
  status.observedGeneration = generation;
  if (JSON.stringify(status) !== JSON.stringify(before)) {
    await deps.lambdas.writeStatus(annotated, status);
    for (const changed of conditionTransitions(before.conditions ?? [], conditions)) {
      await deps.events.record(lambda, changed.status === 'False' ? 'Warning' : 'Normal', changed.reason, `${changed.type}=${changed.status}: ${changed.message}`);
    }
  }
  // The job's outcome is in the status now; until then a failed pass can read it again.
  if (build.consumedJobId) await deps.builds.forget(build.consumedJobId);
  if (image?.consumedJobId) await deps.builds.forget(image.consumedJobId);
  // Superseded images go only now that status names their replacement.
  if (superseded.length > 0 && deps.images) {
    await deleteImages(lambda, key, superseded, status.image, deps);
    await deps.lambdas.setSupersededImages(lambda, []);
  }
  // Only now is this lambda's new route in place, so a lambda taking its old path cannot overlap it.
  if (route.released) deps.routes.onReleased(route.released);
  if (route.waitForEnv || watchers.waitForKind) return { backoffUpToMs: POLL_INTERVAL_MS };
  return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
}

interface RouteOutcome {
  condition: ConditionUpdate;
  url?: string;
  /** Whether the route now serves the asset in status. */
  published: boolean;
  /** A host+path this lambda gave up in this pass. */
  released?: string;
  /** A Secret or ConfigMap named in env is missing: look again with backoff. */
  waitForEnv?: boolean;
  pollAgain?: boolean;
}

/**
 * The lambda's host+path, route record and HTTP exposure. The host+path is claimed first: a
 * lambda refused it publishes nothing and has no Ingress, while the holder keeps working.
 */
async function reconcileRoute(
  lambda: Lambda,
  key: string,
  artifact: LambdaStatus['artifact'],
  built: ConditionUpdate,
  deps: LambdaReconcilerDeps,
): Promise<RouteOutcome> {
  const claim = await claimLambdaPath(lambda, key, deps);
  if (!claim.held) {
    if (await deps.routes.read(key)) await deps.routes.remove(key);
    await removeHttpExposure(lambda, deps.http);
    return {
      condition: { type: 'Routed', status: 'False', reason: 'PathConflict', message: claim.conflict },
      published: false,
      released: claim.released,
      // A safety net: the holder letting go requeues this lambda at once (onReleased).
      pollAgain: true,
    };
  }

  const exposure = lambda.spec.triggers?.http ? await ensureHttpExposure(lambda, deps.http) : (await removeHttpExposure(lambda, deps.http), undefined);
  const outcome = { url: exposure?.url, released: claim.released };
  const through = exposure ? ` through Ingress ${exposure.ingress}` : '';

  let env: ResolvedEnvEntry[];
  try {
    env = await resolveEnv(lambda, { secret: deps.readSecret, configMap: deps.readConfigMap });
  } catch (error) {
    if (!(error instanceof EnvReferenceError)) throw error;
    // The route published before keeps serving with the values it had, as a running pod keeps
    // its env, unless it is for a host+path the lambda no longer holds.
    const published = await deps.routes.read(key);
    const keeps = published !== undefined && routeClaim(published.host, published.pathPrefix) === desiredClaim(lambda);
    if (published && !keeps) await deps.routes.remove(key);
    const message = `${error.message}${keeps ? `; ${published.pathPrefix} keeps serving the route published before` : ''}`;
    return { ...outcome, condition: { type: 'Routed', status: 'False', reason: error.reason, message }, published: false, waitForEnv: true };
  }

  if (!artifact) {
    const condition: ConditionUpdate = { type: 'Routed', status: built.status === 'False' ? 'False' : 'Unknown', reason: 'NotBuilt', message: 'no asset has been built for this lambda yet' };
    return { ...outcome, condition, published: false };
  }
  const published = await deps.routes.read(key);
  const route = desiredRoute(lambda, artifact, encryptSecretValues(env, key, deps.envKeys, published?.env));
  if (!published || JSON.stringify(published) !== JSON.stringify(route)) await deps.routes.publish(route);
  return {
    ...outcome,
    condition: { type: 'Routed', status: 'True', reason: 'Published', message: `${route.pathPrefix} is served by ${route.artifact.digest}${through}` },
    published: true,
    // Secrets and ConfigMaps are not watched: values taken from them are looked at again.
    pollAgain: lambda.spec.env?.some((entry) => entry.valueFrom) ?? false,
  };
}

type PathClaim = { held: true; released?: string } | { held: false; conflict: string; released?: string };

/**
 * Claims the lambda's host+path if the rules let its namespace have it. A lambda the rules
 * refuse gives up what it held: rules change (a grant, a namespace created) and then win over
 * claims made before.
 */
async function claimLambdaPath(lambda: Lambda, key: string, deps: LambdaReconcilerDeps): Promise<PathClaim> {
  const decision = await decideLambdaPath(lambda, deps);
  if (!decision.allowed) return { held: false, conflict: `${describeClaim(lambda)} ${decision.why}`, released: await deps.routes.release(key) };
  const outcome = await deps.routes.claim(key, desiredClaim(lambda), { namespaceOwnsPath: decision.owned });
  return outcome.held ? outcome : { held: false, conflict: describeClaimConflict(lambda, outcome), released: outcome.released };
}

async function decideLambdaPath(lambda: Lambda, deps: LambdaReconcilerDeps): Promise<PathDecision> {
  const namespace = lambda.metadata.namespace!;
  const path = normalizePathPrefix(lambdaPath(lambda));
  const segment = firstPathSegment(path);
  // Asked every pass, not cached: a namespace created later takes its prefix back at the next pass.
  const firstSegmentIsNamespace = segment !== undefined && (segment === namespace || (isNamespaceName(segment) && (await deps.namespaces.exists(segment))));
  return decidePath({ namespace, host: lambda.spec.triggers?.http?.host ?? '', path, firstSegmentIsNamespace }, deps.paths);
}

async function removeRouteAndClaim(key: string, deps: LambdaReconcilerDeps): Promise<void> {
  await deps.routes.remove(key);
  const released = await deps.routes.release(key);
  if (released) deps.routes.onReleased(released);
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

interface ImageOutcome {
  condition: ConditionUpdate;
  image?: string;
  /** A finished image job whose result this pass records; removed once the status is written. */
  consumedJobId?: string;
  /** The image status.image held before this pass replaced it. */
  superseded?: string;
  pollAgain?: boolean;
}

/** The lambda's container image (IMAGE_BUILDS=on): built by the builder from the asset in status, once per asset. */
async function reconcileImage(
  lambda: Lambda,
  key: string,
  artifact: LambdaStatus['artifact'],
  built: ConditionUpdate,
  before: LambdaStatus,
  deps: LambdaReconcilerDeps,
): Promise<ImageOutcome | undefined> {
  const images = deps.images;
  if (!images) return undefined;
  const repository = imageRepository(images.repositoryPrefix, lambda.metadata.namespace!, lambda.metadata.name!);
  const step = decideImage({ artifact, built, repository, before });
  if (step.action !== 'job') return { condition: step.condition };
  const { jobId, data } = desiredImageJob(lambda, artifact!, repository, mountSources(key, artifact!.digest, repository, deps.lambdas.cached()));
  const outcome = imageJobOutcome(await images.state(jobId), artifact!.digest, before.image);
  if (outcome.request) {
    await images.request(jobId, data);
    forLambda(deps.logger, data.lambda).info('requested image build', { artifact: artifact!.digest, repository, mountFrom: data.mountFrom });
  }
  if (outcome.forget) await deps.builds.forget(jobId);
  return {
    condition: outcome.condition,
    ...(outcome.image ? { image: outcome.image } : {}),
    ...(outcome.consumed ? { consumedJobId: jobId } : {}),
    ...(outcome.superseded ? { superseded: outcome.superseded } : {}),
    pollAgain: outcome.pollAgain,
  };
}

/**
 * Deletes the images from the registry, except the one `keep` names and those another lambda's
 * status names (the same repository and digest: never touch what another lambda references).
 * A manifest already gone is fine. When the registry cannot be asked (unreachable, 5xx, refused),
 * a Warning event ImageNotDeleted says why and the pass fails: retried with backoff, the images
 * still listed, never silently leaked.
 */
async function deleteImages(lambda: Lambda, key: string, images: string[], keep: string | undefined, deps: LambdaReconcilerDeps): Promise<void> {
  const kept = keep ? parseImageReference(keep) : undefined;
  for (const image of new Set(images)) {
    const reference = parseImageReference(image);
    if (!reference || (kept && sameImage(reference, kept)) || referencedByOther(reference, key, deps.lambdas.cached())) continue;
    try {
      const deleted = await deps.images!.deleteManifest(reference.repository, reference.digest);
      forLambda(deps.logger, { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! }).info(deleted ? 'deleted image' : 'image already gone', { image });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      await deps.events.record(lambda, 'Warning', 'ImageNotDeleted', `could not delete image ${image}: ${why}; retrying`);
      throw new Error(`deleting image ${image} of Lambda ${key}`, { cause: error });
    }
  }
}

/**
 * What the finalizer guards: builds, images (IMAGE_BUILDS=on), the route, its host+path claim, the asset, the watcher's
 * Redis user and keys (and its Role and RoleBinding in other namespaces) and, with
 * stateRetention Delete, state tables. Kubernetes removes the rest.
 */
async function cleanUpLambda(lambda: Lambda, key: string, deps: LambdaReconcilerDeps): Promise<ReconcileResult | void> {
  const finalizers = lambda.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return;
  const lambdaRef = { namespace: lambda.metadata.namespace!, name: lambda.metadata.name! };
  if (deps.images) {
    // Before forgetAll removes the jobs: what they pushed must be deleted first, or it leaks.
    const pushed = await deps.images.pushedBy(lambdaRef);
    // A running image job would push after we looked: wait for it, then delete that too.
    if (pushed.running) return { requeueAfterMs: CLEANUP_POLL_MS };
    const images = [...(lambda.status?.image ? [lambda.status.image] : []), ...supersededImages(lambda), ...pushed.images];
    await deleteImages(lambda, key, images, undefined, deps);
  }
  const { running, builtDigests } = await deps.builds.forgetAll(lambdaRef);
  // A running build would store an asset after we looked: wait for it, then clean that too.
  if (running) return { requeueAfterMs: CLEANUP_POLL_MS };
  // The Ingress and Service carry owner references: Kubernetes garbage-collects them.
  await removeRouteAndClaim(key, deps);
  // Tables go after the route: no new request reaches the lambda to write into them.
  const stateTables = await deleteUnusedStateTables(lambda, deps);
  const digests = new Set([...builtDigests, ...(lambda.status?.artifact ? [lambda.status.artifact.digest] : [])]);
  for (const digest of digests) await deleteAssetUnlessServed(digest, key, deps);
  await forgetWatcher(lambdaRef, deps.watchers);
  await deps.lambdas.setFinalizers(lambda, finalizers.filter((f) => f !== FINALIZER));
  forLambda(deps.logger, lambdaRef).info('cleaned up deleted lambda', { assets: [...digests], stateTables });
}

/**
 * With stateRetention Delete, removes the lambda's state tables that no other lambda of its
 * namespace declares, and returns them. The other lambdas are listed from the API server rather
 * than taken from the informer cache: a cache lagging behind misses a lambda created, or given
 * the table, moments ago, and the table's data would go from under it. Deleted data cannot come
 * back and deletions are rare, so one list per pass is a cheap price.
 *
 * A failure (Redis down) throws: the finalizer stays, the pass is retried with backoff and the
 * lambda stays Terminating, with a Warning event saying why. Each pass decides afresh, and
 * deleting a table already gone does nothing, so running again is harmless.
 */
async function deleteUnusedStateTables(lambda: Lambda, deps: LambdaReconcilerDeps): Promise<string[]> {
  // Nothing to delete even if no other lambda existed: spare the API server the list.
  if (tablesToDelete(lambda, []).length === 0) return [];
  const namespace = lambda.metadata.namespace!;
  const tables = tablesToDelete(lambda, await deps.lambdas.listInNamespace(namespace));
  if (tables.length === 0) return [];
  try {
    await deps.state.deleteTables(namespace, tables);
  } catch (error) {
    // deleteTables's errors say which table of which namespace and why, in their message.
    const why = error instanceof Error ? error.message : String(error);
    const message = `could not delete state tables ${tables.join(', ')}: ${why}; the Lambda stays until they are deleted`;
    await deps.events.record(lambda, 'Warning', 'StateTablesNotDeleted', message);
    throw new Error(`deleting state tables ${tables.join(', ')} of Lambda ${namespace}/${lambda.metadata.name}`, { cause: error });
  }
  return tables;
}

async function deleteAssetUnlessServed(digest: string, key: string, deps: LambdaReconcilerDeps): Promise<void> {
  if (deps.lambdas.otherServes(digest, key)) return;
  await deps.assets.delete(digest);
}
