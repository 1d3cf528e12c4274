import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { resourceOfKind } from './resource-discovery.ts';

const apps: k8s.V1APIResourceList = {
  groupVersion: 'apps/v1',
  resources: [
    { name: 'deployments/scale', kind: 'Scale', namespaced: true, singularName: '', verbs: ['get'] },
    { name: 'deployments', kind: 'Deployment', namespaced: true, singularName: 'deployment', verbs: ['get', 'list', 'watch'] },
    { name: 'deployments/status', kind: 'Deployment', namespaced: true, singularName: '', verbs: ['get'] },
  ],
};
const core: k8s.V1APIResourceList = { groupVersion: 'v1', resources: [{ name: 'namespaces', kind: 'Namespace', namespaced: false, singularName: 'namespace', verbs: ['list'] }] };

describe('resourceOfKind', () => {
  it('finds the resource of a kind, not its subresources', () => {
    expect(resourceOfKind(apps, 'apps/v1', 'Deployment')).toEqual({ group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true });
  });
  it('says whether it is namespaced, for the core group too', () => {
    expect(resourceOfKind(core, 'v1', 'Namespace')).toEqual({ group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false });
  });
  it('finds nothing for a kind the list lacks, or a group-version the API server does not serve', () => {
    expect(resourceOfKind(apps, 'apps/v1', 'Scale2')).toBeUndefined();
    expect(resourceOfKind(undefined, 'example.com/v1', 'Widget')).toBeUndefined();
  });
});
