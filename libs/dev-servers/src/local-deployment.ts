import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { startPlatformService, type PlatformApp } from './platform-service.ts';
import type { ManagedProcess } from './managed-process.ts';

// No kubelet runs here, so a Deployment's pod never starts. This runs what its pod would run,
// as a local process: the platform service its container runs, the container's environment
// (values, Secret and ConfigMap keys, the pod's name and namespace), and the pod's
// ServiceAccount identity as a token from the TokenRequest API in a kubeconfig of its own. The
// process then holds exactly the permissions the pod would, asked of the real API server.

export interface LocalDeploymentOptions {
  /** Reads the Deployment, its Secrets and ConfigMaps, and requests the token. */
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  /** Which of the platform's services the container runs. */
  app: PlatformApp;
  /** Set on top of the container's environment: what differs outside a cluster (the runner's URL, a port). */
  env?: Record<string, string>;
  logDir: string;
  /** The process's name in logs; default the Deployment's name. */
  processName?: string;
  /** The token's lifetime. Default a week: longer than a local platform usually runs, as kubelet would refresh it. */
  tokenSeconds?: number;
}

export interface LocalDeployment {
  process: ManagedProcess;
  /** The Deployment's generation the process was started from. */
  generation: number;
  /** The environment the process was given (KUBECONFIG included, unless the pod mounts no token). */
  env: Record<string, string>;
}

/** Starts what the Deployment's first container runs, as a local process with the pod's identity. */
export async function startDeploymentLocally(options: LocalDeploymentOptions): Promise<LocalDeployment> {
  const { kubeConfig, namespace, name } = options;
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const deployment = await apps.readNamespacedDeployment({ namespace, name });
  const pod = deployment.spec!.template.spec!;
  const container = pod.containers[0]!;
  const podName = `${name}-local-${process.pid}`;
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const value = await resolveEnvValue(core, namespace, podName, variable);
    // Kubernetes expands references in literal values only, never in what valueFrom reads.
    env[variable.name] = variable.valueFrom ? value : expandEnvReferences(value, env);
  }

  const serviceAccount = pod.serviceAccountName ?? 'default';
  const identity: Record<string, string> = {};
  // A pod without a token mounted has no Kubernetes identity at all; neither does its stand-in.
  if (pod.automountServiceAccountToken !== false) {
    const token = await core.createNamespacedServiceAccountToken({
      namespace,
      name: serviceAccount,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: options.tokenSeconds ?? 7 * 24 * 3600 } },
    });
    identity.KUBECONFIG = path.join(options.logDir, `${options.processName ?? name}.kubeconfig`);
    await writeFile(identity.KUBECONFIG, serviceAccountKubeconfig(kubeConfig, namespace, serviceAccount, token.status!.token!), { mode: 0o600 });
  }

  const processEnv = { ...env, ...identity, ...options.env };
  const started = await startPlatformService(options.app, processEnv, { logDir: options.logDir, name: options.processName ?? name });
  return { process: started, generation: deployment.metadata!.generation ?? 0, env: processEnv };
}

/**
 * Kubernetes' $(NAME) in an env value: the value of a variable defined earlier in the list;
 * $$ is a literal $, and a reference to an unknown name stays as written.
 */
export function expandEnvReferences(value: string, earlier: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return Object.hasOwn(earlier, name!) ? earlier[name!]! : match;
  });
}

async function resolveEnvValue(core: k8s.CoreV1Api, namespace: string, podName: string, variable: k8s.V1EnvVar): Promise<string> {
  const from = variable.valueFrom;
  if (!from) return variable.value ?? '';
  if (from.secretKeyRef) {
    const secret = await core.readNamespacedSecret({ namespace, name: from.secretKeyRef.name! });
    const value = secret.data?.[from.secretKeyRef.key];
    if (value === undefined) throw new Error(`env ${variable.name}: Secret ${namespace}/${from.secretKeyRef.name} has no key ${from.secretKeyRef.key}`);
    return Buffer.from(value, 'base64').toString('utf8');
  }
  if (from.configMapKeyRef) {
    const configMap = await core.readNamespacedConfigMap({ namespace, name: from.configMapKeyRef.name! });
    const value = configMap.data?.[from.configMapKeyRef.key];
    if (value === undefined) throw new Error(`env ${variable.name}: ConfigMap ${namespace}/${from.configMapKeyRef.name} has no key ${from.configMapKeyRef.key}`);
    return value;
  }
  if (from.fieldRef) {
    const fields: Record<string, string> = { 'metadata.name': podName, 'metadata.namespace': namespace, 'status.podIP': '127.0.0.1' };
    const value = fields[from.fieldRef.fieldPath];
    if (value === undefined) throw new Error(`env ${variable.name}: field ${from.fieldRef.fieldPath} is not known outside a pod`);
    return value;
  }
  throw new Error(`env ${variable.name}: only values, Secret and ConfigMap keys and pod fields can be resolved outside a pod`);
}

/** A kubeconfig for the same API server, authenticated only by the ServiceAccount's token. */
export function serviceAccountKubeconfig(kubeConfig: k8s.KubeConfig, namespace: string, serviceAccount: string, token: string): string {
  const cluster = kubeConfig.getCurrentCluster()!;
  const caData = cluster.caData;
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'cluster', cluster: { server: cluster.server, ...(caData ? { 'certificate-authority-data': caData } : { 'certificate-authority': cluster.caFile }) } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'pod', context: { cluster: 'cluster', user, namespace } }],
    'current-context': 'pod',
  });
}
