import type { Lambda } from '@kublambda/crd-types';
import { routeKey, type RouteRecord } from '@kublambda/route-table';

/** The route a lambda should have once its asset exists. */
export function desiredRoute(lambda: Lambda, artifact: { digest: string; size: number }): RouteRecord {
  const namespace = lambda.metadata.namespace!;
  const name = lambda.metadata.name!;
  const { spec } = lambda;
  const http = spec.triggers?.http;
  return {
    key: routeKey(namespace, name),
    namespace,
    name,
    pathPrefix: http?.path ?? `/${namespace}/${name}`,
    ...(http?.host ? { host: http.host } : {}),
    artifact: { digest: artifact.digest, size: artifact.size },
    runtime: spec.runtime ?? 'nodejs',
    timeoutSeconds: spec.timeoutSeconds ?? 30,
    memoryMiB: spec.memoryMiB ?? 128,
    concurrency: spec.concurrency ?? 50,
    stateTables: spec.stateTables ?? [],
    env: spec.env ?? [],
    generation: lambda.metadata.generation ?? 0,
  };
}
