import * as k8s from '@kubernetes/client-node';
import { isNotFound } from '@kublambda/reconcile-runtime';
import { FIELD_MANAGER, holdsApplied, LAMBDA_LABEL, MANAGED_BY_LABEL } from './http-exposure.ts';

/** Objects api-controller owns: read from an informer's cache, written by server-side apply. */
export interface OwnedObjects<T extends k8s.KubernetesObject> {
  cached(namespace: string, name: string): T | undefined;
  /** Everything the informer holds of this kind. */
  listCached(): readonly T[];
  /** Server-side apply with our field manager, forcing conflicts; returns what the server holds. */
  apply(object: T): Promise<T>;
  /** Deletes the object; one that is already gone is fine. */
  delete(namespace: string, name: string): Promise<void>;
}

/** Selects the Ingresses and Services api-controller makes for lambdas. */
export const LAMBDA_OWNED_SELECTOR = `${MANAGED_BY_LABEL}=${FIELD_MANAGER},${LAMBDA_LABEL}`;
/** Selects the runner Service api-controller keeps in the platform namespace. */
export const RUNNER_SERVICE_SELECTOR = `${MANAGED_BY_LABEL}=${FIELD_MANAGER},app.kubernetes.io/component=runner`;

const applyPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);

/** Applies the object unless the server already holds what we want; returns the server's copy. */
export async function ensureApplied<T extends k8s.KubernetesObject>(objects: OwnedObjects<T>, desired: T): Promise<T> {
  const observed = objects.cached(desired.metadata!.namespace!, desired.metadata!.name!);
  return observed && holdsApplied(observed, desired) ? observed : objects.apply(desired);
}

/** Reads from the informer's cache; writes and deletes through the kind's own API calls. */
export function ownedObjects<T extends k8s.KubernetesObject>(
  kind: string,
  cache: () => k8s.ObjectCache<T>,
  calls: { apply(namespace: string, name: string, body: T): Promise<T>; delete(namespace: string, name: string): Promise<unknown> },
): OwnedObjects<T> {
  return {
    cached: (namespace, name) => cache().get(name, namespace),
    listCached: () => cache().list(),
    apply: (object) => {
      const { namespace, name } = object.metadata!;
      return withContext(`applying ${kind} ${namespace}/${name}`, () => calls.apply(namespace!, name!, object));
    },
    delete: (namespace, name) => ignoreNotFound(`deleting ${kind} ${namespace}/${name}`, () => calls.delete(namespace, name)),
  };
}

// The apply bodies go out untyped ("any"), so nothing is renamed or dropped on the way.

export function kubeIngresses(kubeConfig: k8s.KubeConfig, cache: () => k8s.ObjectCache<k8s.V1Ingress>): OwnedObjects<k8s.V1Ingress> {
  const api = kubeConfig.makeApiClient(k8s.NetworkingV1Api);
  return ownedObjects('Ingress', cache, {
    apply: (namespace, name, body) => api.patchNamespacedIngress({ namespace, name, body, fieldManager: FIELD_MANAGER, force: true }, applyPatch),
    delete: (namespace, name) => api.deleteNamespacedIngress({ namespace, name }),
  });
}

export function kubeServices(kubeConfig: k8s.KubeConfig, cache: () => k8s.ObjectCache<k8s.V1Service>): OwnedObjects<k8s.V1Service> {
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return ownedObjects('Service', cache, {
    apply: (namespace, name, body) => api.patchNamespacedService({ namespace, name, body, fieldManager: FIELD_MANAGER, force: true }, applyPatch),
    delete: (namespace, name) => api.deleteNamespacedService({ namespace, name }),
  });
}

/** Lists for informers: the lambdas' Ingresses and Services in one namespace or all, and the runner Service. */
export function ownedObjectLists(kubeConfig: k8s.KubeConfig, watchNamespace: string | undefined, platformNamespace: string) {
  const networking = kubeConfig.makeApiClient(k8s.NetworkingV1Api);
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const scope = watchNamespace ? `namespaces/${watchNamespace}/` : '';
  const labelSelector = LAMBDA_OWNED_SELECTOR;
  return {
    ingresses: {
      path: `/apis/networking.k8s.io/v1/${scope}ingresses`,
      labelSelector,
      list: () => (watchNamespace ? networking.listNamespacedIngress({ namespace: watchNamespace, labelSelector }) : networking.listIngressForAllNamespaces({ labelSelector })),
    },
    services: {
      path: `/api/v1/${scope}services`,
      labelSelector,
      list: () => (watchNamespace ? core.listNamespacedService({ namespace: watchNamespace, labelSelector }) : core.listServiceForAllNamespaces({ labelSelector })),
    },
    runnerService: {
      path: `/api/v1/namespaces/${platformNamespace}/services`,
      labelSelector: RUNNER_SERVICE_SELECTOR,
      list: () => core.listNamespacedService({ namespace: platformNamespace, labelSelector: RUNNER_SERVICE_SELECTOR }),
    },
  };
}

/** A Secret's data, decoded; undefined when it does not exist. */
export function kubeSecrets(kubeConfig: k8s.KubeConfig) {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return async (namespace: string, name: string): Promise<Record<string, string> | undefined> => {
    try {
      const { data = {} } = await core.readNamespacedSecret({ namespace, name });
      return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading Secret ${namespace}/${name}`, { cause: error });
    }
  };
}

async function withContext<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new Error(what, { cause: error });
  }
}

async function ignoreNotFound(what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (!isNotFound(error)) throw new Error(what, { cause: error });
  }
}
