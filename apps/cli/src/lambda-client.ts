// The Kubernetes API as the lambda commands use it: Lambdas and their Events, with the
// kubeconfig's credentials, nothing else. Every failure is a CommandError with a message
// from explainKubeError.
import * as k8s from '@kubernetes/client-node';
import { LAMBDA_API_VERSION, LAMBDA_GROUP, LAMBDA_KIND, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from '@kublambda/crd-types';
import { CommandError, explainKubeError, type KubeRequest } from './kube-errors.ts';

export const FIELD_MANAGER = 'kublambda-cli';
const LAMBDA_RESOURCE = `${LAMBDA_PLURAL}.${LAMBDA_GROUP}`;
const applyPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);

export interface LambdaEvent {
  type: string;
  reason: string;
  note: string;
  time: string;
  count: number;
  source: string;
}

export interface LambdaClient {
  namespace: string;
  server: string;
  apply(lambda: Lambda): Promise<Lambda>;
  /** undefined when there is no such Lambda. */
  get(name: string): Promise<Lambda | undefined>;
  list(allNamespaces: boolean): Promise<Lambda[]>;
  /** false when there was no such Lambda. */
  delete(name: string): Promise<boolean>;
  events(lambda: Lambda): Promise<LambdaEvent[]>;
}

export interface KubeConfigOptions {
  kubeconfig?: string;
  context?: string;
}

/** The kubeconfig as kubectl finds it (--kubeconfig, KUBECONFIG, ~/.kube/config), at --context if given. */
export function loadKubeConfig(options: KubeConfigOptions = {}): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  try {
    if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new CommandError(`loading the kubeconfig${options.kubeconfig ? ` ${options.kubeconfig}` : ''}: ${(error as Error).message}`);
  }
  if (options.context) {
    if (!kubeConfig.getContextObject(options.context)) {
      throw new CommandError(`the kubeconfig has no context "${options.context}" (it has ${kubeConfig.getContexts().map((c) => `"${c.name}"`).join(', ') || 'none'})`);
    }
    kubeConfig.setCurrentContext(options.context);
  }
  return kubeConfig;
}

export function lambdaClient(kubeConfig: k8s.KubeConfig, namespace: string): LambdaClient {
  const api = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const events = kubeConfig.makeApiClient(k8s.EventsV1Api);
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the API server (none in the kubeconfig)';
  const context = kubeConfig.getCurrentContext() || undefined;
  const fail = (error: unknown, request: Omit<KubeRequest, 'server' | 'context'>): never => {
    throw new CommandError(explainKubeError(error, { server, context, ...request }), { cause: error });
  };
  const ref = { group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace };
  return {
    namespace,
    server,
    apply: async (lambda) => {
      const name = lambda.metadata.name!;
      const body = { ...lambda, apiVersion: LAMBDA_API_VERSION, kind: LAMBDA_KIND, metadata: { ...lambda.metadata, namespace } };
      try {
        return (await api.patchNamespacedCustomObject({ ...ref, name, body, fieldManager: FIELD_MANAGER, force: true }, applyPatch)) as Lambda;
      } catch (error) {
        return fail(error, { verb: 'patch', resource: LAMBDA_RESOURCE, namespace, name });
      }
    },
    get: async (name) => {
      try {
        return (await api.getNamespacedCustomObject({ ...ref, name })) as Lambda;
      } catch (error) {
        if (isMissingObject(error)) return undefined;
        return fail(error, { verb: 'get', resource: LAMBDA_RESOURCE, namespace, name });
      }
    },
    list: async (allNamespaces) => {
      try {
        const list = (allNamespaces
          ? await api.listClusterCustomObject({ group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL })
          : await api.listNamespacedCustomObject(ref)) as { items: Lambda[] };
        return list.items;
      } catch (error) {
        return fail(error, { verb: 'list', resource: LAMBDA_RESOURCE, ...(allNamespaces ? {} : { namespace }) });
      }
    },
    delete: async (name) => {
      try {
        await api.deleteNamespacedCustomObject({ ...ref, name });
        return true;
      } catch (error) {
        if (isMissingObject(error)) return false;
        return fail(error, { verb: 'delete', resource: LAMBDA_RESOURCE, namespace, name });
      }
    },
    events: async (lambda) => {
      const name = lambda.metadata.name!;
      let list: k8s.EventsV1EventList;
      try {
        list = await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.kind=${LAMBDA_KIND},regarding.name=${name}` });
      } catch (error) {
        return fail(error, { verb: 'list', resource: 'events.events.k8s.io', namespace });
      }
      return list.items
        // Events of an earlier Lambda of the same name are not this one's story.
        .filter((event) => !lambda.metadata.uid || !event.regarding?.uid || event.regarding.uid === lambda.metadata.uid)
        .map((event) => ({
          type: event.type ?? '',
          reason: event.reason ?? '',
          note: event.note ?? '',
          time: toIso(event.series?.lastObservedTime ?? event.eventTime ?? event.deprecatedLastTimestamp ?? event.metadata?.creationTimestamp),
          count: event.series?.count ?? event.deprecatedCount ?? 1,
          source: event.reportingController ?? event.deprecatedSource?.component ?? '',
        }))
        .sort((a, b) => a.time.localeCompare(b.time));
    },
  };
}

/** A 404 about the object itself (its name in the details), not about the resource type. */
function isMissingObject(error: unknown): boolean {
  if ((error as { code?: unknown }).code !== 404) return false;
  const body = (error as { body?: unknown }).body;
  const parsed = typeof body === 'string' ? safeJson(body) : body;
  return Boolean((parsed as { details?: { name?: string } } | undefined)?.details?.name);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function toIso(time: Date | string | undefined): string {
  if (time === undefined) return '';
  return time instanceof Date ? time.toISOString() : String(time);
}
