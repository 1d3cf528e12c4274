import type https from 'node:https';
import * as k8s from '@kubernetes/client-node';

type CreateDispatcher = (cluster: k8s.Cluster | null, agentOptions: https.AgentOptions) => unknown;

/**
 * The kubeconfig as kubectl finds it (KUBECONFIG, in-cluster, ~/.kube/config), its API
 * connections kept and reused.
 */
export function loadKubeConfig(): k8s.KubeConfig {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromDefault();
  return reuseApiConnections(kubeConfig);
}

/**
 * @kubernetes/client-node 2.0 makes a new undici Agent for every request of its generated API
 * clients, so every request opens a TLS connection of its own: with 1,000 lambdas applied at
 * once, a third of api-controller's CPU went to TLS handshakes, and hundreds of sockets waited
 * out their keep-alive. Here each cluster and TLS setting gets one Agent, whose connections
 * are kept and reused as client-node already does for its https.Agent.
 */
export function reuseApiConnections(kubeConfig: k8s.KubeConfig): k8s.KubeConfig {
  // A private method in client-node's typings, called for every request (applySecurityAuthentication).
  const target = kubeConfig as unknown as { createDispatcher: CreateDispatcher };
  const original = target.createDispatcher.bind(kubeConfig);
  const dispatchers = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    // The TLS settings include the client certificate and key: another user gets another Agent.
    const { ca, cert, key: privateKey, pfx, passphrase, rejectUnauthorized, servername } = agentOptions;
    const key = [cluster?.server, cluster?.skipTLSVerify, cluster?.proxyUrl, ca, cert, privateKey, pfx, passphrase, rejectUnauthorized, servername].map(keyPart).join('\n');
    if (!dispatchers.has(key)) dispatchers.set(key, original(cluster, agentOptions));
    return dispatchers.get(key);
  };
  return kubeConfig;
}

/** A TLS setting as text: certificates come as Buffers or strings, alone or in lists. */
function keyPart(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(keyPart).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
