// Generated from crd/lambdas.kublambda.io.yaml by `npm run generate:crd-types`. Do not edit:
// change the CRD and regenerate; a test fails while this file and the CRD disagree.
import type { V1ObjectMeta } from '@kubernetes/client-node';

/**
 * A Lambda is a function that Kublambda builds from source, serves over HTTP, calls on Kubernetes resource events and gives named state tables.
 */
export interface Lambda {
  apiVersion: "kublambda.io/v1alpha1";
  kind: "Lambda";
  metadata: V1ObjectMeta;
  spec: LambdaSpec;
  status?: LambdaStatus;
}
/**
 * What the lambda is and how it is called. Written by its owner.
 */
export interface LambdaSpec {
  /**
   * The language runtime that runs the handler. nodejs runs JavaScript and TypeScript.
   */
  runtime?: "nodejs";
  source: LambdaSource;
  /**
   * The file whose default export is the handler, relative to the source root. Its extension chooses TypeScript (.ts, .mts, .tsx) or JavaScript (.js, .mjs, .jsx).
   */
  entrypoint?: string;
  build?: BuildOptions;
  triggers?: Triggers;
  /**
   * Names of the state tables this lambda may use; lambdas in one namespace that name the same table share it.
   *
   * @maxItems 32
   */
  stateTables?: string[];
  /**
   * What happens to this lambda's state tables when it is deleted. Retain keeps them; Delete removes the tables that no remaining lambda declares.
   */
  stateRetention?: "Retain" | "Delete";
  /**
   * Longest time one invocation may run before it is answered with 504.
   */
  timeoutSeconds?: number;
  /**
   * Memory limit of one worker process, in MiB.
   */
  memoryMiB?: number;
  /**
   * Requests one warm worker handles at the same time.
   */
  concurrency?: number;
  /**
   * CPU time one request may use, in milliseconds; a request that uses more is stopped and answered 503 with reason CpuLimit. When several requests share a worker, the worker's CPU is charged to them in equal parts.
   */
  cpuMillis?: number;
  /**
   * Network access for the lambda's code. outbound (the default): the handler may open connections (fetch, net, dgram, DNS). none: its workers run without network access and every connection attempt fails with ERR_ACCESS_DENIED.
   */
  network?: "outbound" | "none";
  /**
   * Environment variables visible to the handler (process.env and context.env).
   *
   * @maxItems 64
   */
  env?: EnvVar[];
}
/**
 * Where the code comes from. Exactly one of inline, files, configMapRef or archive.
 */
export interface LambdaSource {
  /**
   * The whole handler as one file, saved under the name in spec.entrypoint. Example: export default async (request) => new Response("hello")
   */
  inline?: string;
  /**
   * Several files by relative path (for example index.ts, lib/util.ts, package.json). A package.json's dependencies are installed and bundled.
   */
  files?: {
    [k: string]: string;
  };
  configMapRef?: ConfigMapSource;
  archive?: ArchiveSource;
}
/**
 * A ConfigMap in the lambda's namespace whose keys are file names and values are file contents.
 */
export interface ConfigMapSource {
  /**
   * Name of the ConfigMap.
   */
  name: string;
}
/**
 * A gzipped tar archive of the source tree.
 */
export interface ArchiveSource {
  /**
   * Where to fetch the archive, as s3://bucket/key, http:// or https://.
   */
  url: string;
  /**
   * Expected sha256 of the archive, hex encoded; the build fails when it differs.
   */
  sha256?: string;
}
/**
 * How the source is turned into an executable asset.
 */
export interface BuildOptions {
  /**
   * When true, TypeScript type errors fail the build (Built=False, reason CompileFailed).
   */
  typeCheck?: boolean;
}
/**
 * How the lambda is called. With no triggers it is still callable inside the cluster through the runner Service.
 */
export interface Triggers {
  http?: HttpTrigger;
  /**
   * Kubernetes resources whose changes call the lambda with a CloudEvent.
   *
   * @maxItems 16
   */
  watch?: WatchTrigger[];
}
/**
 * Exposes the lambda over HTTP through an Ingress; its URL appears in status.url.
 */
export interface HttpTrigger {
  /**
   * URL path prefix that reaches the lambda, for example /hello. Defaults to /<namespace>/<name>.
   */
  path?: string;
  /**
   * Host name the Ingress rule matches (may start with '*.'); empty matches every host.
   */
  host?: string;
  /**
   * IngressClass for the lambda's Ingress; empty uses the platform default.
   */
  ingressClassName?: string;
  /**
   * A TLS Secret in the lambda's namespace; when set the Ingress serves HTTPS for the host.
   */
  tlsSecretName?: string;
}
export interface WatchTrigger {
  /**
   * API group and version of the watched resource, for example v1 or apps/v1.
   */
  apiVersion: string;
  /**
   * Kind of the watched resource, for example ConfigMap.
   */
  kind: string;
  /**
   * Namespace to watch; defaults to the lambda's own. Another namespace needs the platform administrator's permission.
   */
  namespace?: string;
  /**
   * Label selector in kubectl syntax, for example app=demo,tier!=cache.
   */
  labelSelector?: string;
  /**
   * Field selector in kubectl syntax, for example metadata.name=settings.
   */
  fieldSelector?: string;
  /**
   * Which changes call the lambda.
   *
   * @minItems 1
   * @maxItems 3
   */
  events?: ["ADDED" | "MODIFIED" | "DELETED", ...("ADDED" | "MODIFIED" | "DELETED")[]];
  /**
   * CEL expression over {type, object, oldObject}; the lambda is called only when it is true. Example: object.data.enabled == "true".
   */
  condition?: string;
}
export interface EnvVar {
  /**
   * Variable name.
   */
  name: string;
  /**
   * Literal value.
   */
  value?: string;
  valueFrom?: EnvVarSource;
}
/**
 * Takes the value from a key of a Secret or ConfigMap in the lambda's namespace.
 */
export interface EnvVarSource {
  secretKeyRef?: SecretKeyRef;
  configMapKeyRef?: ConfigMapKeyRef;
}
export interface SecretKeyRef {
  /**
   * Name of the Secret.
   */
  name: string;
  /**
   * Key within the Secret.
   */
  key: string;
}
export interface ConfigMapKeyRef {
  /**
   * Name of the ConfigMap.
   */
  name: string;
  /**
   * Key within the ConfigMap.
   */
  key: string;
}
/**
 * What the platform observed and did. Written by the platform only.
 */
export interface LambdaStatus {
  /**
   * The spec generation this status describes.
   */
  observedGeneration?: number;
  /**
   * Built, ImageReady, Routed, WatchersReady and the summary Ready.
   *
   * @maxItems 16
   */
  conditions?: Condition[];
  /**
   * Digest of the source the conditions describe: files, entrypoint and build options. It changes when the source does, also when it lives in a ConfigMap.
   */
  sourceDigest?: string;
  artifact?: ArtifactStatus;
  /**
   * Container image with the asset, pinned by digest.
   */
  image?: string;
  /**
   * URL that reaches the lambda over HTTP.
   */
  url?: string;
}
export interface Condition {
  /**
   * Condition type, for example Ready.
   */
  type: string;
  /**
   * True, False or Unknown.
   */
  status: "True" | "False" | "Unknown";
  /**
   * The spec generation the condition was set for.
   */
  observedGeneration?: number;
  /**
   * When the status last changed.
   */
  lastTransitionTime: string;
  /**
   * Machine-readable CamelCase reason.
   */
  reason: string;
  /**
   * Human-readable details.
   */
  message: string;
}
/**
 * The executable asset being served; while a new source builds or fails, the last good one.
 */
export interface ArtifactStatus {
  /**
   * Content address of the asset.
   */
  digest: string;
  /**
   * Size of the asset in bytes.
   */
  size: number;
}
