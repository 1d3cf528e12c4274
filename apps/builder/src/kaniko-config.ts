// IMAGE_BACKEND=kaniko: what the builder needs to run a lambda's image build as a batch/v1 Job
// of the Kaniko executor. Read once at start-up; every bad value is reported with the others.
import type { ArtifactStoreConfig } from '@kublambda/artifact-store';
import type { Env } from '@kublambda/config';

/**
 * osscontainertools/kaniko, the maintained fork of the archived GoogleContainerTools/kaniko,
 * pinned to a release (its release workflow tags the executor image with the version).
 */
export const DEFAULT_KANIKO_IMAGE = 'ghcr.io/osscontainertools/kaniko:v1.28.3';
export const DEFAULT_KANIKO_CONTEXT_PREFIX = 'kaniko-contexts/';

export interface KanikoResources {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
}

export interface KanikoImageBackendConfig {
  backend: 'kaniko';
  /** The registry as the build pod reaches it: host[:port] for --destination and FROM; plain http when insecure. */
  registry: { host: string; insecure: boolean };
  /** The runner base image, a repository of that registry, by tag or digest. */
  base: { repo: string; reference: string };
  /** The Kaniko executor image. */
  image: string;
  /** Where the Jobs live: the builder's own namespace. */
  namespace: string;
  /** A kubernetes.io/dockerconfigjson Secret in that namespace: the pod's registry credentials. */
  registrySecret: string;
  /** A Secret in that namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the pod's S3 credentials for its context. */
  s3Secret: string;
  /** Where build contexts go (the artifact store's bucket) and how the pod reaches it. */
  context: { bucket: string; prefix: string; endpoint: string; region: string };
  resources: KanikoResources;
  activeDeadlineSeconds: number;
  ttlSecondsAfterFinished: number;
  /** Put on every build pod (to opt it out of a service-mesh sidecar, say). */
  podAnnotations: Record<string, string>;
}

/** The variables only IMAGE_BACKEND=kaniko reads: set with another backend, they would be silently ignored. */
export const KANIKO_ONLY = [
  'KANIKO_IMAGE',
  'KANIKO_NAMESPACE',
  'KANIKO_REGISTRY_SECRET',
  'KANIKO_S3_SECRET',
  'KANIKO_S3_ENDPOINT',
  'KANIKO_CONTEXT_PREFIX',
  'KANIKO_CPU_REQUEST',
  'KANIKO_MEMORY_REQUEST',
  'KANIKO_CPU_LIMIT',
  'KANIKO_MEMORY_LIMIT',
  'KANIKO_DEADLINE_SECONDS',
  'KANIKO_TTL_SECONDS',
  'KANIKO_POD_ANNOTATIONS',
];

// RFC 1123 names: DNS labels (namespaces) and subdomains (Secrets).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// An image reference as a pod's `image` takes it: [host[:port]/]path[:tag][@sha256:...].
const IMAGE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;
const QUANTITY = /^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const QUANTITY_FACTORS: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
// The Kubernetes API's own bound for annotations' total size.
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/**
 * The Kaniko settings proper; the registry and base image come from IMAGE_REGISTRY_URL,
 * IMAGE_REGISTRY_INSECURE and IMAGE_BASE (parseImageBackendConfig). The build context goes to
 * the artifact store's bucket, so that must be S3. Returns the problems found rather than throwing.
 */
export function parseKanikoSettings(
  env: Env,
  artifactStore: ArtifactStoreConfig | undefined,
): { settings?: Omit<KanikoImageBackendConfig, 'backend' | 'registry' | 'base'>; problems: string[] } {
  const problems: string[] = [];
  const value = (name: string) => env[name]?.trim() || undefined;

  const image = value('KANIKO_IMAGE') ?? DEFAULT_KANIKO_IMAGE;
  if (!IMAGE.test(image)) problems.push(`KANIKO_IMAGE must be an image reference such as ${DEFAULT_KANIKO_IMAGE}, not "${image}"`);

  const namespace = value('KANIKO_NAMESPACE') ?? value('POD_NAMESPACE') ?? 'kublambda-system';
  if (!DNS_LABEL.test(namespace)) problems.push(`KANIKO_NAMESPACE must be a namespace name (a DNS label: a-z, 0-9, -, at most 63), not "${namespace}"`);

  const secret = (name: string, what: string) => {
    const secretName = value(name);
    if (!secretName) problems.push(`${name} is required with IMAGE_BACKEND=kaniko (${what})`);
    else if (secretName.length > 253 || !DNS_SUBDOMAIN.test(secretName)) problems.push(`${name} must be a Secret name (a DNS subdomain: a-z, 0-9, - and ., at most 253), not "${secretName}"`);
    return secretName ?? '';
  };
  const registrySecret = secret('KANIKO_REGISTRY_SECRET', 'a kubernetes.io/dockerconfigjson Secret in the Jobs\' namespace: the build pod\'s registry credentials');
  const s3Secret = secret('KANIKO_S3_SECRET', 'a Secret in the Jobs\' namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the build pod\'s credentials for its context in S3');

  const context = kanikoContextLocation(env, artifactStore, problems);
  const resources = kanikoResources(env, problems);
  const seconds = (name: string, fallback: number, max: number) => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
      problems.push(`${name} must be a whole number of seconds from 1 to ${max}, not "${raw}"`);
      return fallback;
    }
    return Number(raw);
  };
  const activeDeadlineSeconds = seconds('KANIKO_DEADLINE_SECONDS', 900, 86_400);
  const ttlSecondsAfterFinished = seconds('KANIKO_TTL_SECONDS', 3_600, 7 * 86_400);
  const podAnnotations = kanikoPodAnnotations(value('KANIKO_POD_ANNOTATIONS'), problems);

  if (problems.length > 0 || !context) return { problems };
  return { settings: { image, namespace, registrySecret, s3Secret, context, resources, activeDeadlineSeconds, ttlSecondsAfterFinished, podAnnotations }, problems };
}

function kanikoContextLocation(env: Env, artifactStore: ArtifactStoreConfig | undefined, problems: string[]): KanikoImageBackendConfig['context'] | undefined {
  const prefix = env.KANIKO_CONTEXT_PREFIX?.trim() || DEFAULT_KANIKO_CONTEXT_PREFIX;
  if (!/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*\/?$/.test(prefix) || prefix.split('/').some((part) => part === '.' || part === '..')) {
    problems.push(`KANIKO_CONTEXT_PREFIX must be an S3 key prefix such as ${DEFAULT_KANIKO_CONTEXT_PREFIX} (letters, digits, !_.*'()- between slashes), not "${prefix}"`);
  }
  const endpointValue = env.KANIKO_S3_ENDPOINT?.trim() || undefined;
  if (endpointValue !== undefined) {
    const url = URL.canParse(endpointValue) ? new URL(endpointValue) : undefined;
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
      problems.push(`KANIKO_S3_ENDPOINT must be http(s)://host[:port] (the S3 endpoint as the build pod reaches it), not "${endpointValue}"`);
    }
  }
  // An invalid artifact store is reported by its own parser.
  if (!artifactStore) return undefined;
  if (artifactStore.kind !== 's3') {
    problems.push('IMAGE_BACKEND=kaniko needs an S3 artifact store (ARTIFACT_STORE_URL=s3://bucket/...): the build pod reads its context from that bucket');
    return undefined;
  }
  const builderEndpoint = `${artifactStore.useSSL ? 'https' : 'http'}://${artifactStore.endPoint}:${artifactStore.port}`;
  return {
    bucket: artifactStore.bucket,
    prefix: prefix.endsWith('/') ? prefix : `${prefix}/`,
    endpoint: endpointValue ? new URL(endpointValue).origin : builderEndpoint,
    region: artifactStore.region,
  };
}

function kanikoResources(env: Env, problems: string[]): KanikoResources {
  const quantity = (name: string, fallback: string | undefined): string | undefined => {
    const raw = env[name]?.trim() || fallback;
    if (raw === undefined || raw === 'none') return undefined;
    if (!QUANTITY.test(raw)) {
      problems.push(`${name} must be a Kubernetes quantity such as 500m, 2, 512Mi or 2Gi (or none), not "${raw}"`);
      return undefined;
    }
    return raw;
  };
  const requests = { cpu: quantity('KANIKO_CPU_REQUEST', '500m'), memory: quantity('KANIKO_MEMORY_REQUEST', '512Mi') };
  const limits = { cpu: quantity('KANIKO_CPU_LIMIT', undefined), memory: quantity('KANIKO_MEMORY_LIMIT', '2Gi') };
  for (const resource of ['cpu', 'memory'] as const) {
    const request = requests[resource];
    const limit = limits[resource];
    if (request && limit && quantityValue(request) > quantityValue(limit)) {
      const names = resource === 'cpu' ? ['KANIKO_CPU_REQUEST', 'KANIKO_CPU_LIMIT'] : ['KANIKO_MEMORY_REQUEST', 'KANIKO_MEMORY_LIMIT'];
      problems.push(`${names[0]} (${request}) is more than ${names[1]} (${limit}): the API server refuses such a pod`);
    }
  }
  const defined = (entries: Record<string, string | undefined>) => Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== undefined)) as { cpu?: string; memory?: string };
  return { requests: defined(requests), limits: defined(limits) };
}

/** A quantity as a number, for comparing a request with its limit. */
export function quantityValue(quantity: string): number {
  const match = QUANTITY.exec(quantity);
  if (!match) throw new Error(`not a quantity: ${quantity}`);
  return Number(match[1]) * QUANTITY_FACTORS[match[3] ?? '']!;
}

function kanikoPodAnnotations(raw: string | undefined, problems: string[]): Record<string, string> {
  if (!raw) return {};
  const example = '{"sidecar.istio.io/inject":"false"}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    problems.push(`KANIKO_POD_ANNOTATIONS must be a JSON object of strings, for example ${example}: ${(error as Error).message}`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    problems.push(`KANIKO_POD_ANNOTATIONS must be a JSON object of strings, for example ${example}, not ${raw}`);
    return {};
  }
  const annotations = parsed as Record<string, string>;
  for (const key of Object.keys(annotations)) {
    if (!isQualifiedName(key)) problems.push(`KANIKO_POD_ANNOTATIONS: "${key}" is not a valid annotation key ([prefix/]name, the name at most 63 of A-Z a-z 0-9 - _ .)`);
  }
  if (Buffer.byteLength(raw) > MAX_ANNOTATIONS_BYTES) problems.push(`KANIKO_POD_ANNOTATIONS is larger than the API server allows (${MAX_ANNOTATIONS_BYTES} bytes)`);
  return annotations;
}

/** A Kubernetes qualified name: an optional DNS subdomain prefix and "/", then 1-63 of [A-Za-z0-9-_.] starting and ending alphanumeric. */
function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name);
}
