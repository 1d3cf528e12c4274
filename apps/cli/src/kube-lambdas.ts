import * as k8s from '@kubernetes/client-node';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from '@kublambda/crd-types';
import { describeError, isNotFound } from '@kublambda/reconcile-runtime';

/** The namespace of the kubeconfig's current context, as kubectl takes it; "default" without one. */
export function contextNamespace(kubeConfig: k8s.KubeConfig): string {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace || 'default';
}

/** A Lambda's spec.stateTables, or undefined when the Lambda does not exist. */
export function kubeDeclaredTables(kubeConfig: k8s.KubeConfig): (namespace: string, name: string) => Promise<string[] | undefined> {
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  return async (namespace, name) => {
    try {
      const lambda = (await api.getNamespacedCustomObject({ group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace, name })) as Lambda;
      return lambda.spec.stateTables ?? [];
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading Lambda ${namespace}/${name} from ${kubeConfig.getCurrentCluster()?.server ?? 'the API server'}: ${describeError(error)}`);
    }
  };
}
