import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { LAMBDA_API_VERSION, LAMBDA_KIND, lambdaPath, RUNNER_POD_LABELS, type Lambda } from '@kublambda/crd-types';

// The objects that expose lambdas over HTTP, as pure functions of a Lambda and the platform's
// configuration. An Ingress can only name a Service in its own namespace, and an owner
// reference cannot cross namespaces, so each lambda with an HTTP trigger gets, in its own
// namespace and owned by it, an Ingress and an ExternalName Service that points at the runner
// Service in the platform namespace (docs/http-triggers.md says why this shape).

export interface HttpExposureConfig {
  /** Where the runner pool and its Service live. */
  platformNamespace: string;
  clusterDomain: string;
  /** IngressClass for lambdas that name none; empty leaves it to the cluster's default class. */
  ingressClassName: string;
  /** Put on every lambda Ingress, for the ingress controller. */
  ingressAnnotations: Record<string, string>;
  /** Where the ingress controller is reached from outside, for example http://lambdas.example.com. */
  externalBaseUrl?: string;
  /**
   * Put after a host rule's host in status.url (EXTERNAL_HOST_SUFFIX): the local platform's
   * ".localhost:<port>", as <host>.localhost resolves to loopback and its runner routes it as <host>.
   */
  externalHostSuffix?: string;
}

export const FIELD_MANAGER = 'kublambda-api-controller';
export const RUNNER_SERVICE = 'kublambda-runner';
export const RUNNER_SERVICE_PORT = 80;
/** Every object api-controller applies carries this label; its informers select on it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const LAMBDA_LABEL = 'kublambda.io/lambda';
/** A digest of what was applied: fields dropped from the desired object show up as a changed digest. */
export const APPLIED_DIGEST_ANNOTATION = 'kublambda.io/applied-digest';

const OWNED_PREFIX = 'kublambda-';

/** The name of a lambda's Ingress and Service; names are at most 53 characters, so this fits a Service name (63). */
export function ownedObjectName(lambdaName: string): string {
  return `${OWNED_PREFIX}${lambdaName}`;
}

/** The lambda an owned object belongs to, from its namespace and name. */
export function lambdaKeyOfOwned(namespace: string, objectName: string): string | undefined {
  return objectName.startsWith(OWNED_PREFIX) ? `${namespace}/${objectName.slice(OWNED_PREFIX.length)}` : undefined;
}

/** The path a lambda is served under, whether or not it has an HTTP trigger (the CRD's default). */
export { lambdaPath };

/** The Service in front of the runner pool, in the platform namespace. The chart creates the pods it selects. */
export function desiredRunnerService(config: HttpExposureConfig): k8s.V1Service {
  return withDigest({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: RUNNER_SERVICE,
      namespace: config.platformNamespace,
      labels: { ...RUNNER_POD_LABELS, [MANAGED_BY_LABEL]: FIELD_MANAGER },
    },
    spec: {
      type: 'ClusterIP',
      selector: RUNNER_POD_LABELS,
      ports: [{ name: 'http', port: RUNNER_SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  });
}

/** The lambda's stand-in for the runner Service, in the lambda's namespace, where its Ingress can name it. */
export function desiredLambdaService(lambda: Lambda, config: HttpExposureConfig): k8s.V1Service {
  return withDigest({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMetadata(lambda),
    spec: {
      type: 'ExternalName',
      externalName: `${RUNNER_SERVICE}.${config.platformNamespace}.svc.${config.clusterDomain}`,
      ports: [{ name: 'http', port: RUNNER_SERVICE_PORT, protocol: 'TCP' }],
    },
  });
}

/** The Ingress for a lambda with an HTTP trigger: its host and path to the runner. */
export function desiredIngress(lambda: Lambda, config: HttpExposureConfig): k8s.V1Ingress {
  const http = lambda.spec.triggers?.http ?? {};
  const ingressClassName = http.ingressClassName || config.ingressClassName;
  return withDigest({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { ...ownedMetadata(lambda), annotations: { ...config.ingressAnnotations } },
    spec: {
      ...(ingressClassName ? { ingressClassName } : {}),
      ...(http.tlsSecretName && http.host ? { tls: [{ hosts: [http.host], secretName: http.tlsSecretName }] } : {}),
      rules: [
        {
          ...(http.host ? { host: http.host } : {}),
          http: {
            paths: [
              {
                path: lambdaPath(lambda),
                pathType: 'Prefix',
                backend: { service: { name: ownedObjectName(lambda.metadata.name!), port: { number: RUNNER_SERVICE_PORT } } },
              },
            ],
          },
        },
      ],
    },
  });
}

/**
 * The URL that reaches the lambda from outside: its own host when it names one, else the
 * platform's external base URL, else the address the ingress controller reports for the
 * Ingress. Undefined while none of them is known.
 */
export function lambdaUrl(
  route: { host?: string; path: string; tls: boolean },
  externalBaseUrl: string | undefined,
  loadBalancer: ReadonlyArray<{ hostname?: string; ip?: string }>,
  hostSuffix = '',
): string | undefined {
  if (route.host) {
    const scheme = route.tls ? 'https' : externalBaseUrl ? new URL(externalBaseUrl).protocol.slice(0, -1) : 'http';
    return `${scheme}://${route.host}${hostSuffix}${route.path}`;
  }
  if (externalBaseUrl) return `${externalBaseUrl}${route.path}`;
  const address = loadBalancer.find((entry) => entry.hostname || entry.ip);
  if (!address) return undefined;
  const host = address.hostname ?? (address.ip!.includes(':') ? `[${address.ip}]` : address.ip!);
  return `http://${host}${route.path}`;
}

/**
 * Whether the object on the server still has everything we applied: server defaults and
 * fields other managers own may be added, but none of ours changed or went missing.
 */
export function holdsApplied(observed: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(observed) && observed.length === desired.length && desired.every((item, i) => holdsApplied(observed[i], item));
  }
  if (desired !== null && typeof desired === 'object') {
    if (observed === null || typeof observed !== 'object') return false;
    return Object.entries(desired).every(([key, value]) => holdsApplied((observed as Record<string, unknown>)[key], value));
  }
  return observed === desired;
}

/** Metadata of an object the lambda owns, in its namespace: our labels and a controller owner reference. */
export function ownedMetadata(lambda: Lambda, objectName = ownedObjectName(lambda.metadata.name!), extraLabels: Record<string, string> = {}): k8s.V1ObjectMeta {
  const { name, namespace, uid } = lambda.metadata;
  return {
    name: objectName,
    namespace,
    labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER, [LAMBDA_LABEL]: name!, ...extraLabels },
    ownerReferences: [{ apiVersion: LAMBDA_API_VERSION, kind: LAMBDA_KIND, name: name!, uid: uid!, controller: true, blockOwnerDeletion: true }],
  };
}

export function withDigest<T extends { metadata?: k8s.V1ObjectMeta }>(object: T): T {
  const digest = createHash('sha256').update(JSON.stringify(object)).digest('hex').slice(0, 16);
  return { ...object, metadata: { ...object.metadata, annotations: { ...object.metadata?.annotations, [APPLIED_DIGEST_ANNOTATION]: digest } } };
}
