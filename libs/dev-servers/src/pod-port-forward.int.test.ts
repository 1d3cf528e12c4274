// kubectl port-forward through the real API server to a kwok pod, whose port kwok's server
// (standing in for the kubelet) forwards to a local process: every hop on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestNamespace, desiredPortForward, kubeBinary, kubectl, KWOK_NODE, servePodLogs, startManagedProcess, startPodStandIn, testKubeConfig, waitUntil } from './index.ts';

const kubeConfig = testKubeConfig();
let namespace: { name: string; delete(): Promise<void> };
let server: Server;
let serverPort: number;

beforeAll(async () => {
  namespace = await createTestNamespace(kubeConfig, 'portforward');
  server = createServer((request, response) => response.end(`hello from the local process: ${request.url}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  serverPort = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.close();
  await namespace?.delete();
});

/** `kubectl port-forward` to the pod on a free local port; resolves once it says where it listens. */
async function kubectlPortForward(pod: string): Promise<{ child: ChildProcess; localPort: number }> {
  const child = spawn(await kubeBinary('kubectl'), ['--kubeconfig', process.env.KUBECONFIG!, 'port-forward', '-n', namespace.name, '--address=127.0.0.1', `pod/${pod}`, ':8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const localPort = await waitUntil('kubectl port-forward to listen', () => Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1]) || undefined, {
    timeoutMs: 30_000,
    describe: () => output,
  });
  return { child, localPort };
}

describe('pod port-forward through kwok', () => {
  it('names the kwok node as the kubelet: loopback InternalIP and the kwok server port', async () => {
    const node = await kubeConfig.makeApiClient(k8s.CoreV1Api).readNode({ name: KWOK_NODE });
    expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    expect(node.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBeGreaterThan(0);
  });

  it("kubectl port-forward reaches the local process a pod's PortForward names", async () => {
    const standIn = await startPodStandIn(kubeConfig, { namespace: namespace.name, name: 'web', labels: { app: 'web' }, port: { name: 'http', containerPort: 8080 }, target: { address: '127.0.0.1', port: serverPort } });
    try {
      // kwok learns of the PortForward through its watch: until then a connection is refused.
      const body = await waitUntil('a request through the port-forward to be answered', async () => {
        const { child, localPort } = await kubectlPortForward(standIn.pod);
        try {
          const response = await fetch(`http://127.0.0.1:${localPort}/through`, { signal: AbortSignal.timeout(5_000) });
          return response.ok ? await response.text() : undefined;
        } catch {
          return undefined;
        } finally {
          child.kill();
        }
      }, { timeoutMs: 60_000, intervalMs: 500 });
      expect(body).toBe('hello from the local process: /through');
    } finally {
      await standIn.delete();
    }
  });

  it("kubectl logs reads a local process's output as the stand-in pod's log, and follows it", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-pod-logs-'));
    // A process that writes a line to stdout and one to stderr, then a tick every 200 ms.
    const process_ = await startManagedProcess({
      name: 'talker',
      command: process.execPath,
      args: ['-e', "console.log('first line'); console.error('to stderr'); setInterval(() => console.log('tick ' + Date.now()), 200)"],
      logFile: path.join(dir, 'talker.log'),
      criLogFile: path.join(dir, 'talker.cri.log'),
      isReady: async () => true,
    });
    const standIn = await startPodStandIn(kubeConfig, {
      namespace: namespace.name,
      name: 'talker',
      labels: { app: 'talker' },
      port: { name: 'http', containerPort: 8080 },
      target: { address: '127.0.0.1', port: serverPort },
    });
    const podLogs = await servePodLogs(kubeConfig, { namespace: namespace.name, pod: standIn.pod, containers: ['talker'], logsFile: process_.criLogFile! });
    try {
      const logs = await waitUntil('kubectl logs to show the process output', async () => {
        const result = await kubectl(['logs', '-n', namespace.name, standIn.pod, '--timestamps'], { kubeconfig: process.env.KUBECONFIG! });
        return result.exitCode === 0 && result.stdout.includes('tick') ? result.stdout : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      const lines = logs.split('\n');
      expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z first line$/);
      expect(lines).toContainEqual(expect.stringMatching(/Z to stderr$/));
      // --since keeps only newer lines: the first line is older than that by now.
      await waitUntil('the first line to be 3 s old', async () => Date.now() - Date.parse(lines[0]!.split(' ')[0]!) > 3_000 || undefined, { timeoutMs: 10_000 });
      const recent = await kubectl(['logs', '-n', namespace.name, standIn.pod, '--since=2s'], { kubeconfig: process.env.KUBECONFIG! });
      expect(recent.stdout).not.toContain('first line');
      expect(recent.stdout).toContain('tick');
    } finally {
      await podLogs.delete();
      await standIn.delete();
      await process_.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a target off loopback', () => {
    expect(() => desiredPortForward({ namespace: 'a', pod: 'b', ports: [1], target: { address: '10.0.0.1', port: 80 } })).toThrow('must be on loopback');
  });
});
