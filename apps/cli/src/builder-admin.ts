// The builder's admin API (the build records as JSON), reached through the API server's
// port-forward to a builder pod (pod-http.ts): never with Redis addresses or credentials on the
// user's machine.
import type * as k8s from '@kubernetes/client-node';
import type { BuildFilter, BuildRecord } from '@kublambda/build-queue';
import { ADMIN_PORT_NAME, BUILDER_POD_LABELS } from '@kublambda/crd-types';
import { adminJson, findPlatformPod, type PlatformPodKind, type PodPort } from './pod-http.ts';

export const BUILDER_PODS: PlatformPodKind = {
  what: 'builder',
  labels: BUILDER_POD_LABELS,
  portName: ADMIN_PORT_NAME,
  hint: 'is the builder running with ADMIN_PORT set?',
};

export interface BuilderAdmin {
  list(filter: BuildFilter): Promise<BuildRecord[]>;
  retry(id: string): Promise<BuildRecord>;
}

/** The admin API of a builder pod in the platform namespace, each request over a port-forward of its own. */
export function builderAdmin(kubeConfig: k8s.KubeConfig, platformNamespace: string): BuilderAdmin {
  let target: Promise<PodPort> | undefined;
  const call = async (method: string, path: string) =>
    adminJson(kubeConfig, platformNamespace, await (target ??= findPlatformPod(kubeConfig, platformNamespace, BUILDER_PODS)), "the builder's admin API", method, path);
  return {
    list: async (filter) => {
      const query = new URLSearchParams(Object.entries(filter).filter((entry): entry is [string, string] => entry[1] !== undefined));
      return ((await call('GET', `/api/builds?${query}`)) as { builds: BuildRecord[] }).builds;
    },
    retry: async (id) => ((await call('POST', `/api/builds/${encodeURIComponent(id)}/retry`)) as { build: BuildRecord }).build,
  };
}

