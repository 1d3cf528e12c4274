import { describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { reuseApiConnections } from './kube-config.ts';

function kubeConfigOf(users: Array<{ name: string; token?: string; certData?: string }>): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server: 'https://127.0.0.1:6443', caData: Buffer.from('not a real CA').toString('base64'), skipTLSVerify: false }],
    users,
    contexts: users.map((user) => ({ name: user.name, cluster: 'test', user: user.name })),
    currentContext: users[0]!.name,
  });
  return reuseApiConnections(kubeConfig);
}

/** The dispatcher client-node gives a request, as its generated clients ask for one. */
async function dispatcherOf(kubeConfig: k8s.KubeConfig): Promise<unknown> {
  let dispatcher: unknown;
  await kubeConfig.applySecurityAuthentication({ setHeaderParam: () => {}, setDispatcher: (given: unknown) => (dispatcher = given) } as never);
  return dispatcher;
}

describe('reuseApiConnections', () => {
  it('gives every request of a cluster and user the same Agent, so connections are reused', async () => {
    const kubeConfig = kubeConfigOf([{ name: 'alice', token: 'a' }]);
    const first = await dispatcherOf(kubeConfig);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kubeConfig)).toBe(first);
    expect(await dispatcherOf(kubeConfig)).toBe(first);
  });

  it('keeps users with other client certificates apart', async () => {
    const kubeConfig = kubeConfigOf([
      { name: 'alice', certData: Buffer.from('alice').toString('base64') },
      { name: 'bob', certData: Buffer.from('bob').toString('base64') },
    ]);
    const alice = await dispatcherOf(kubeConfig);
    kubeConfig.setCurrentContext('bob');
    const bob = await dispatcherOf(kubeConfig);
    expect(bob).not.toBe(alice);
    kubeConfig.setCurrentContext('alice');
    expect(await dispatcherOf(kubeConfig)).toBe(alice);
  });
});
