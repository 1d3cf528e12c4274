import type { Lambda } from '@kublambda/crd-types';
import { claimParts, routeClaim, routeKey, type RouteRecord } from '@kublambda/route-table';
import { lambdaPath } from './http-exposure.ts';

/** The route a lambda should have once its asset exists, with its env already resolved (and Secret values encrypted). */
export function desiredRoute(lambda: Lambda, artifact: { digest: string; size: number }, env: RouteRecord['env']): RouteRecord {
  const namespace = lambda.metadata.namespace!;
  const name = lambda.metadata.name!;
  const { spec } = lambda;
  const host = spec.triggers?.http?.host;
  return {
    key: routeKey(namespace, name),
    namespace,
    name,
    pathPrefix: lambdaPath(lambda),
    ...(host ? { host } : {}),
    artifact: { digest: artifact.digest, size: artifact.size },
    runtime: spec.runtime ?? 'nodejs',
    timeoutSeconds: spec.timeoutSeconds ?? 30,
    memoryMiB: spec.memoryMiB ?? 128,
    concurrency: spec.concurrency ?? 50,
    cpuMillis: spec.cpuMillis ?? 10_000,
    network: spec.network ?? 'outbound',
    stateTables: spec.stateTables ?? [],
    env,
    generation: lambda.metadata.generation ?? 0,
  };
}

/** The host+path the lambda's route needs to itself (see routeClaim). */
export function desiredClaim(lambda: Lambda): string {
  return routeClaim(lambda.spec.triggers?.http?.host, lambdaPath(lambda));
}

/** How a claim reads in a message: "host example.com, path /x" or "path /x (any host)". */
export function describeClaim(lambda: Lambda): string {
  const host = lambda.spec.triggers?.http?.host;
  return host ? `host ${host} path ${lambdaPath(lambda)}` : `path ${lambdaPath(lambda)} (any host)`;
}

/**
 * Why a claim was refused, naming the holder's namespace; the holder's name only when it is in
 * the lambda's own namespace (nothing of another namespace's lambdas beyond where they are).
 */
export function describeClaimConflict(lambda: Lambda, conflict: { holder: string; heldClaim: string }): string {
  const [holderNamespace] = conflict.holder.split('/');
  const holder = holderNamespace === lambda.metadata.namespace ? `lambda ${conflict.holder}` : `a lambda of namespace ${holderNamespace}`;
  if (conflict.heldClaim === desiredClaim(lambda)) return `${describeClaim(lambda)} is held by ${holder}`;
  return `${describeClaim(lambda)} is below ${claimParts(conflict.heldClaim).path}, held by ${holder}`;
}
