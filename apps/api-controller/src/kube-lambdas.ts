import * as k8s from '@kubernetes/client-node';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda, type LambdaStatus } from '@kublambda/crd-types';
import { forLambda, type Logger } from '@kublambda/logging';
import { describeError, isNotFound } from '@kublambda/reconcile-runtime';
import { SUPERSEDED_IMAGES_ANNOTATION } from './lambda-image.ts';
import type { LambdaReconcilerDeps } from './reconcile-lambda.ts';

const lambdaPath = { group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL };
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** Lambda reads and writes through the API server; `cached` answers questions about all lambdas. */
export function kubeLambdas(kubeConfig: k8s.KubeConfig, cached: () => ReadonlyArray<Lambda>): LambdaReconcilerDeps['lambdas'] {
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  return {
    get: async (namespace, name) => {
      try {
        return (await api.getNamespacedCustomObject({ ...lambdaPath, namespace, name })) as Lambda;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw new Error(`reading Lambda ${namespace}/${name}`, { cause: error });
      }
    },
    setFinalizers: async (lambda, finalizers) => {
      const { namespace, name, resourceVersion } = lambda.metadata;
      try {
        // resourceVersion in a merge patch makes it conditional: a concurrent change fails it.
        return (await api.patchNamespacedCustomObject(
          { ...lambdaPath, namespace: namespace!, name: name!, body: { metadata: { finalizers, resourceVersion } } },
          mergePatch,
        )) as Lambda;
      } catch (error) {
        throw new Error(`setting finalizers of Lambda ${namespace}/${name}`, { cause: error });
      }
    },
    writeStatus: async (lambda, status: LambdaStatus) => {
      const { namespace, name } = lambda.metadata;
      try {
        await api.replaceNamespacedCustomObjectStatus({ ...lambdaPath, namespace: namespace!, name: name!, body: { ...lambda, status } });
      } catch (error) {
        throw new Error(`writing status of Lambda ${namespace}/${name}`, { cause: error });
      }
    },
    otherServes: (digest, exceptKey) =>
      cached().some((other) => `${other.metadata.namespace}/${other.metadata.name}` !== exceptKey && other.status?.artifact?.digest === digest),
    cached,
    setSupersededImages: async (lambda, images) => {
      const { namespace, name } = lambda.metadata;
      const value = images.length > 0 ? images.join(' ') : null;
      try {
        return (await api.patchNamespacedCustomObject(
          { ...lambdaPath, namespace: namespace!, name: name!, body: { metadata: { annotations: { [SUPERSEDED_IMAGES_ANNOTATION]: value } } } },
          mergePatch,
        )) as Lambda;
      } catch (error) {
        throw new Error(`recording superseded images of Lambda ${namespace}/${name}`, { cause: error });
      }
    },
    listInNamespace: async (namespace) => {
      try {
        // No resourceVersion: a consistent list, as current as etcd, never an older cached one.
        return ((await api.listNamespacedCustomObject({ ...lambdaPath, namespace })) as k8s.KubernetesListObject<Lambda>).items;
      } catch (error) {
        throw new Error(`listing the Lambdas of namespace ${namespace}`, { cause: error });
      }
    },
  };
}

/** Lists lambdas in one namespace, or in all when none is given. */
export function listLambdas(kubeConfig: k8s.KubeConfig, namespace?: string): () => Promise<k8s.KubernetesListObject<Lambda>> {
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  return async () =>
    (namespace ? await api.listNamespacedCustomObject({ ...lambdaPath, namespace }) : await api.listClusterCustomObject(lambdaPath)) as k8s.KubernetesListObject<Lambda>;
}

export function lambdasWatchPath(namespace?: string): string {
  return `/apis/${LAMBDA_GROUP}/${LAMBDA_VERSION}/${namespace ? `namespaces/${namespace}/` : ''}${LAMBDA_PLURAL}`;
}

export function kubeConfigMaps(kubeConfig: k8s.KubeConfig) {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return async (namespace: string, name: string): Promise<Record<string, string> | undefined> => {
    try {
      return (await core.readNamespacedConfigMap({ namespace, name })).data ?? {};
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading ConfigMap ${namespace}/${name}`, { cause: error });
    }
  };
}

/** Whether a namespace exists: "/<namespace>/" belongs to it (path-ownership.ts). */
export function kubeNamespaces(kubeConfig: k8s.KubeConfig): LambdaReconcilerDeps['namespaces'] {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return {
    exists: async (name) => {
      try {
        await core.readNamespace({ name });
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw new Error(`reading Namespace ${name}`, { cause: error });
      }
    },
  };
}

/**
 * Kubernetes Events (events.k8s.io/v1) about lambdas, so `kubectl describe` tells their story.
 * Best effort: an event that cannot be written is logged, never a reason to fail a reconcile.
 */
export function kubeEvents(kubeConfig: k8s.KubeConfig, reportingInstance: string, logger: Logger): LambdaReconcilerDeps['events'] {
  const api = kubeConfig.makeApiClient(k8s.EventsV1Api);
  let serial = 0;
  return {
    record: async (lambda, type, reason, note) => {
      const { namespace, name, uid, resourceVersion } = lambda.metadata;
      await api.createNamespacedEvent({
        namespace: namespace!,
        body: {
          // Named as client-go names events: the object's name and a unique hex suffix.
          metadata: { name: `${name}.${(Date.now() * 1000 + (serial++ % 1000)).toString(16)}`, namespace },
          eventTime: new k8s.V1MicroTime(),
          reportingController: 'kublambda.io/api-controller',
          reportingInstance,
          action: 'Reconcile',
          reason,
          note: note.slice(0, 1024),
          type,
          regarding: { apiVersion: lambda.apiVersion, kind: lambda.kind, namespace, name, uid, resourceVersion },
        },
      }).catch((error: unknown) => forLambda(logger, { namespace: namespace!, name: name! }).warn('could not record event', { reason, error: describeError(error) }));
    },
  };
}
