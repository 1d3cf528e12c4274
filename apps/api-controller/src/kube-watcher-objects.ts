import * as k8s from '@kubernetes/client-node';
import { FIELD_MANAGER } from './http-exposure.ts';
import { COMPONENT_LABEL, WATCHER_COMPONENT } from './desired-watcher.ts';
import { LAMBDA_OWNED_SELECTOR, ownedObjects, type OwnedObjects } from './kube-owned-objects.ts';

// The kinds an event-watcher is made of, read from informers and written by server-side apply
// through the generic object API (one code path for all five kinds).

/** Selects the objects api-controller makes for lambdas' event-watchers. */
export const WATCHER_OWNED_SELECTOR = `${LAMBDA_OWNED_SELECTOR},${COMPONENT_LABEL}=${WATCHER_COMPONENT}`;

const WATCHER_KINDS = {
  serviceAccounts: { apiVersion: 'v1', kind: 'ServiceAccount', path: (scope: string) => `/api/v1/${scope}serviceaccounts` },
  roles: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', path: (scope: string) => `/apis/rbac.authorization.k8s.io/v1/${scope}roles` },
  roleBindings: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', path: (scope: string) => `/apis/rbac.authorization.k8s.io/v1/${scope}rolebindings` },
  secrets: { apiVersion: 'v1', kind: 'Secret', path: (scope: string) => `/api/v1/${scope}secrets` },
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment', path: (scope: string) => `/apis/apps/v1/${scope}deployments` },
} as const;
export type WatcherKind = keyof typeof WATCHER_KINDS;

export interface WatcherObjectKinds {
  serviceAccounts: OwnedObjects<k8s.V1ServiceAccount>;
  roles: OwnedObjects<k8s.V1Role>;
  roleBindings: OwnedObjects<k8s.V1RoleBinding>;
  secrets: OwnedObjects<k8s.V1Secret>;
  deployments: OwnedObjects<k8s.V1Deployment>;
}

/**
 * What the informers list and watch. Roles and RoleBindings are watched in every namespace,
 * even with WATCH_NAMESPACE: a lambda granted another namespace has them there.
 */
export function watcherObjectLists(kubeConfig: k8s.KubeConfig, watchNamespace: string | undefined) {
  const api = k8s.KubernetesObjectApi.makeApiClient(kubeConfig);
  const labelSelector = WATCHER_OWNED_SELECTOR;
  const source = (which: WatcherKind, namespace: string | undefined) => {
    const { apiVersion, kind, path } = WATCHER_KINDS[which];
    return {
      path: path(namespace ? `namespaces/${namespace}/` : ''),
      labelSelector,
      list: () => api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector),
    };
  };
  return {
    serviceAccounts: source('serviceAccounts', watchNamespace),
    roles: source('roles', undefined),
    roleBindings: source('roleBindings', undefined),
    secrets: source('secrets', watchNamespace),
    deployments: source('deployments', watchNamespace),
  };
}

/** What one watcher kind's informer lists and watches. */
export type WatcherObjectSource = ReturnType<typeof watcherObjectLists>[WatcherKind];

const SERVER_SIDE_APPLY = k8s.PatchStrategy.ServerSideApply;

/** The five kinds, each read from its informer's cache. */
export function kubeWatcherObjects(kubeConfig: k8s.KubeConfig, caches: { [K in WatcherKind]: () => k8s.ObjectCache<k8s.KubernetesObject> }): WatcherObjectKinds {
  const api = k8s.KubernetesObjectApi.makeApiClient(kubeConfig);
  const of = <T extends k8s.KubernetesObject>(which: WatcherKind): OwnedObjects<T> => {
    const { apiVersion, kind } = WATCHER_KINDS[which];
    return ownedObjects<T>(kind, caches[which] as () => k8s.ObjectCache<T>, {
      apply: (_namespace, _name, body) => api.patch(body, undefined, undefined, FIELD_MANAGER, true, SERVER_SIDE_APPLY),
      delete: (namespace, name) => api.delete({ apiVersion, kind, metadata: { namespace, name } }),
    });
  };
  return { serviceAccounts: of('serviceAccounts'), roles: of('roles'), roleBindings: of('roleBindings'), secrets: of('secrets'), deployments: of('deployments') };
}
