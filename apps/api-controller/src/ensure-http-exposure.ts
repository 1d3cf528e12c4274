import type * as k8s from '@kubernetes/client-node';
import type { Lambda } from '@kublambda/crd-types';
import { desiredIngress, desiredLambdaService, desiredRunnerService, lambdaPath, lambdaUrl, ownedObjectName, type HttpExposureConfig } from './http-exposure.ts';
import { ensureApplied, type OwnedObjects } from './kube-owned-objects.ts';

export interface HttpExposureDeps {
  config: HttpExposureConfig;
  ingresses: OwnedObjects<k8s.V1Ingress>;
  services: OwnedObjects<k8s.V1Service>;
}

/**
 * The lambda's Service and Ingress, applied when missing or drifted. Returns the Ingress's name
 * and the lambda's URL (undefined until the URL can be known).
 */
export async function ensureHttpExposure(lambda: Lambda, deps: HttpExposureDeps): Promise<{ ingress: string; url?: string }> {
  const http = lambda.spec.triggers!.http!;
  // The Service first, so the Ingress never names a backend that does not exist.
  await ensureApplied(deps.services, desiredLambdaService(lambda, deps.config));
  const ingress = await ensureApplied(deps.ingresses, desiredIngress(lambda, deps.config));
  const route = { host: http.host, path: lambdaPath(lambda), tls: Boolean(http.tlsSecretName) };
  return { ingress: ingress.metadata!.name!, url: lambdaUrl(route, deps.config.externalBaseUrl, ingress.status?.loadBalancer?.ingress ?? [], deps.config.externalHostSuffix) };
}

/** Removes the lambda's Ingress and Service, if it has them. */
export async function removeHttpExposure(lambda: Lambda, deps: HttpExposureDeps): Promise<void> {
  const namespace = lambda.metadata.namespace!;
  const name = ownedObjectName(lambda.metadata.name!);
  // The informer's cache is the guide: an object it has not seen yet brings an event, and
  // with it another pass that removes it.
  if (deps.ingresses.cached(namespace, name)) await deps.ingresses.delete(namespace, name);
  if (deps.services.cached(namespace, name)) await deps.services.delete(namespace, name);
}

/** The runner Service in the platform namespace, applied when missing or drifted. */
export async function ensureRunnerService(services: OwnedObjects<k8s.V1Service>, config: HttpExposureConfig): Promise<void> {
  await ensureApplied(services, desiredRunnerService(config));
}
