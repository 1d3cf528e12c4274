// Runs against the real control plane of the Jest global setup, and starts a second one of its own.
import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, KWOK_NODE, kubectl, kubernetesVersion, portAcceptsConnections, startControlPlane, testKubeConfig, waitUntil } from './index.ts';

const kubeConfig = testKubeConfig();

describe('test control plane', () => {
  it('serves the pinned Kubernetes version', async () => {
    const version = await kubeConfig.makeApiClient(k8s.VersionApi).getCode();
    expect(version.gitVersion).toBe(await kubernetesVersion());
    expect(version.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
  });

  // etcd older than 3.4.31/3.5.13 lacks watch progress requests; kube-apiserver then answers
  // streaming-list watches (what client-go informers use) with a 500.
  it('serves streaming-list watches', async () => {
    const watch = await kubectl(['get', '--raw',
      '/api/v1/namespaces?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1']);
    const events = watch.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; object: { metadata: { name?: string; annotations?: Record<string, string> } } });
    expect(events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
    expect(events.find((e) => e.type === 'BOOKMARK')?.object.metadata.annotations?.['k8s.io/initial-events-end']).toBe('true');
    expect(events.filter((e) => e.type === 'ERROR')).toEqual([]);
  });

  it("schedules a Deployment's pod onto the kwok node, which makes it Ready with a loopback IP", async () => {
    const namespace = await createTestNamespace(kubeConfig, 'kwok');
    try {
      const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
      await apps.createNamespacedDeployment({
        namespace: namespace.name,
        body: {
          metadata: { name: 'web' },
          spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'example.invalid/web:1' }] } } },
        },
      });
      const available = await waitUntil('the Deployment to be available', async () => {
        const deployment = await apps.readNamespacedDeployment({ namespace: namespace.name, name: 'web' });
        return (deployment.status?.availableReplicas ?? 0) >= 1 && deployment;
      }, { timeoutMs: 60_000 });
      expect(available.status?.readyReplicas).toBe(1);
      const pods = await kubeConfig.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: namespace.name });
      expect(pods.items.map((pod) => ({ node: pod.spec?.nodeName, phase: pod.status?.phase, loopback: /^127\./.test(pod.status?.podIP ?? '') }))).toEqual([
        { node: KWOK_NODE, phase: 'Running', loopback: true },
      ]);
    } finally {
      await namespace.delete();
    }
  });

  it('enforces RBAC: a service account without a role is refused', async () => {
    const namespace = await createTestNamespace(kubeConfig, 'rbac');
    try {
      const as = `--as=system:serviceaccount:${namespace.name}:default`;
      const denied = await kubectl(['auth', 'can-i', 'list', 'lambdas.kublambda.io', '-n', namespace.name, as]);
      expect(denied.stdout.trim()).toBe('no');
      const list = await kubectl(['get', 'lam', '-n', namespace.name, as]);
      expect(list.exitCode).not.toBe(0);
      expect(list.stderr).toContain(`User "system:serviceaccount:${namespace.name}:default" cannot list resource "lambdas"`);

      const rbac = kubeConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
      await rbac.createNamespacedRole({
        namespace: namespace.name,
        body: { metadata: { name: 'lambda-reader' }, rules: [{ apiGroups: ['kublambda.io'], resources: ['lambdas'], verbs: ['list'] }] },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: namespace.name,
        body: {
          metadata: { name: 'lambda-reader' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'lambda-reader' },
          subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: namespace.name }],
        },
      });
      const allowed = await waitUntil('the role binding to take effect', async () => {
        const result = await kubectl(['auth', 'can-i', 'list', 'lambdas.kublambda.io', '-n', namespace.name, as]);
        return result.stdout.trim() === 'yes' ? result : undefined;
      });
      expect(allowed.exitCode).toBe(0);
    } finally {
      await namespace.delete();
    }
  });

  it('runs kube-controller-manager: service accounts appear and deleted namespaces go away', async () => {
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const namespace = await createTestNamespace(kubeConfig, 'kcm');
    const serviceAccount = await waitUntil('the default service account', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: namespace.name }).catch(() => undefined),
    );
    expect(serviceAccount.metadata?.name).toBe('default');
    await core.createNamespacedConfigMap({ namespace: namespace.name, body: { metadata: { name: 'leftover' }, data: { a: 'b' } } });

    await namespace.delete();
    const gone = await waitUntil('the namespace to be deleted', async () => {
      const status = await core.readNamespace({ name: namespace.name }).then(
        () => undefined,
        (error: k8s.ApiException<unknown>) => (error.code === 404 ? 'gone' : undefined),
      );
      return status;
    });
    expect(gone).toBe('gone');
  });

  it('starts a second, independent control plane (with kube-scheduler, without kube-controller-manager) and stops it completely', async () => {
    const second = await startControlPlane({ controllerManager: false, scheduler: true });
    const port = Number(new URL(second.apiServerUrl).port);
    try {
      expect(second.apiServerUrl).not.toBe(kubeConfig.getCurrentCluster()?.server);
      const crd = await second.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api).readCustomResourceDefinition({ name: 'lambdas.kublambda.io' });
      expect(crd.spec.names.shortNames).toEqual(['lam']);
      expect(await readFile(second.kubeconfigPath, 'utf8')).toContain(second.apiServerUrl);
      expect(second.processes.map((p) => p.name)).toEqual(['etcd', 'kube-apiserver', 'kube-scheduler']);
    } finally {
      await second.stop();
    }
    expect(await portAcceptsConnections(port)).toBe(false);
    await expect(readFile(second.kubeconfigPath, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('says how to get the binaries when they are not built', async () => {
    const saved = process.env.KUBLAMBDA_CACHE;
    process.env.KUBLAMBDA_CACHE = '/nonexistent/kublambda-cache';
    try {
      await expect(startControlPlane()).rejects.toThrow(
        /^\/nonexistent\/kublambda-cache\/servers\/etcd@v3\.\d+\.\d+\/etcd is missing: build it with tools\/servers\/build\.sh$/,
      );
    } finally {
      if (saved === undefined) delete process.env.KUBLAMBDA_CACHE;
      else process.env.KUBLAMBDA_CACHE = saved;
    }
  });
});
