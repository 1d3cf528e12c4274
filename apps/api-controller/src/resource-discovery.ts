import * as k8s from '@kubernetes/client-node';
import { isNotFound } from '@kublambda/reconcile-runtime';
import { groupOf, type DiscoveredResource } from './desired-watcher.ts';

// Which resource an apiVersion and kind name, from the API server's discovery documents
// (/api/v1, /apis/<group>/<version>): core kinds, built-in groups and CRDs alike.

export interface ResourceDiscovery {
  /** The resource of this kind in this apiVersion; undefined when the API server serves none (yet). */
  find(apiVersion: string, kind: string): Promise<DiscoveredResource | undefined>;
}

/** The resource of a kind in one group-version's resource list, skipping subresources (pods/log). */
export function resourceOfKind(list: k8s.V1APIResourceList | undefined, apiVersion: string, kind: string): DiscoveredResource | undefined {
  const found = list?.resources.find((r) => r.kind === kind && !r.name.includes('/'));
  if (!found) return undefined;
  const version = apiVersion.slice(apiVersion.indexOf('/') + 1);
  return { group: groupOf(apiVersion), version, resource: found.name, kind, namespaced: found.namespaced };
}

/**
 * Discovery through the API server, each group-version's list kept `ttlMs`. A kind the kept
 * list lacks is looked up again: a CRD installed a moment ago is found at the next pass.
 */
export function kubeResourceDiscovery(kubeConfig: k8s.KubeConfig, options: { ttlMs?: number; now?: () => number } = {}): ResourceDiscovery {
  const { ttlMs = 30_000, now = Date.now } = options;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  const kept = new Map<string, { at: number; list: k8s.V1APIResourceList | undefined }>();
  const fetchList = async (apiVersion: string): Promise<k8s.V1APIResourceList | undefined> => {
    try {
      if (!apiVersion.includes('/')) return apiVersion === 'v1' ? await core.getAPIResources() : undefined;
      const [group, version] = apiVersion.split('/') as [string, string];
      return await custom.getAPIResources({ group, version });
    } catch (error) {
      // An unknown group or version: no kind of it can be watched (yet).
      if (isNotFound(error)) return undefined;
      throw new Error(`discovering the resources of ${apiVersion}`, { cause: error });
    }
  };
  return {
    find: async (apiVersion, kind) => {
      const entry = kept.get(apiVersion);
      const fresh = entry && now() - entry.at < ttlMs ? resourceOfKind(entry.list, apiVersion, kind) : undefined;
      if (fresh) return fresh;
      const list = await fetchList(apiVersion);
      kept.set(apiVersion, { at: now(), list });
      return resourceOfKind(list, apiVersion, kind);
    },
  };
}
