import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';

/** The kubeconfig of the shared test control plane ($KUBECONFIG, set by the Jest global setup). */
export function testKubeConfig(): k8s.KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) throw new Error('KUBECONFIG is not set: integration tests run under the Jest global setup that starts the control plane');
  const config = new k8s.KubeConfig();
  config.loadFromFile(path);
  return config;
}

/**
 * A namespace of its own for one test file, so tests never see each other's objects.
 * delete() removes it (kube-controller-manager then deletes what it holds).
 */
export async function createTestNamespace(kubeConfig: k8s.KubeConfig, prefix = 'test'): Promise<{ name: string; delete(): Promise<void> }> {
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'kublambda.io/test': 'true' } } } });
  return {
    name,
    delete: async () => {
      await core.deleteNamespace({ name }).catch((error: unknown) => {
        if ((error as { code?: number }).code !== 404) throw error;
      });
    },
  };
}
