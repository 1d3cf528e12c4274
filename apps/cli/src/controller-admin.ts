// api-controller's admin API (apps/api-controller/src/admin-api.ts): dead letters and state
// tables, reached through the API server's port-forward to an api-controller pod.
import type * as k8s from '@kubernetes/client-node';
import { ADMIN_PORT_NAME, API_CONTROLLER_POD_LABELS } from '@kublambda/crd-types';
import type { ListOptions, ListPage } from '@kublambda/lambda-api';
import type { DeadLetter, LambdaName } from '@kublambda/watch-triggers';
import { adminJson, findPlatformPod, type PlatformPodKind, type PodPort } from './pod-http.ts';

export const API_CONTROLLER_PODS: PlatformPodKind = {
  what: 'api-controller',
  labels: API_CONTROLLER_POD_LABELS,
  portName: ADMIN_PORT_NAME,
  hint: 'is the platform installed (helm install, or npm run up), and api-controller running with ADMIN_PORT set?',
};

export interface ControllerAdmin {
  deadLetters(lambda: LambdaName): Promise<DeadLetter[]>;
  retryDeadLetter(lambda: LambdaName, id: string): Promise<{ retried: DeadLetter; status: number }>;
  listTable(namespace: string, table: string, options: ListOptions): Promise<ListPage>;
}

const lambdaPath = (lambda: LambdaName) => `/api/namespaces/${encodeURIComponent(lambda.namespace)}/lambdas/${encodeURIComponent(lambda.name)}`;

export function controllerAdmin(kubeConfig: k8s.KubeConfig, platformNamespace: string): ControllerAdmin {
  let target: Promise<PodPort> | undefined;
  const call = async (method: string, path: string) =>
    adminJson(kubeConfig, platformNamespace, await (target ??= findPlatformPod(kubeConfig, platformNamespace, API_CONTROLLER_PODS)), "api-controller's admin API", method, path);
  return {
    deadLetters: async (lambda) => ((await call('GET', `${lambdaPath(lambda)}/dead-letters`)) as { deadLetters: DeadLetter[] }).deadLetters,
    retryDeadLetter: async (lambda, id) => (await call('POST', `${lambdaPath(lambda)}/dead-letters/${encodeURIComponent(id)}/retry`)) as { retried: DeadLetter; status: number },
    listTable: async (namespace, table, options) => {
      const query = new URLSearchParams(Object.entries(options).filter((entry): entry is [string, string | number] => entry[1] !== undefined).map(([key, value]) => [key, String(value)]));
      return (await call('GET', `/api/namespaces/${encodeURIComponent(namespace)}/tables/${encodeURIComponent(table)}?${query}`)) as ListPage;
    },
  };
}
