// Serving each pod of a Deployment with a local process, for tests and the local platform on kwok: pods never
// run here (kwok only marks them Running and Ready, with a loopback IP from 127.1.0.0/16), so a
// process started for a pod listens on that pod's IP and container port, and what the
// EndpointSlices point at answers. kwok marks a pod Ready the moment it gives it its IP; this
// plays the kubelet's readiness probe: the pod is set not Ready until its process serves, then
// Ready again. Processes of pods that go away (deleted, terminating) are stopped.
import * as k8s from '@kubernetes/client-node';
import type { ManagedProcess } from './managed-process.ts';

export interface ServedPod {
  pod: string;
  ip: string;
  process: ManagedProcess;
}

export interface PodProcesses {
  /** The processes now serving, by pod name. */
  readonly served: ReadonlyMap<string, ServedPod>;
  /** Failures to start or to mark a pod (a test should see none). */
  readonly errors: readonly Error[];
  stop(): Promise<void>;
}

export interface PodProcessesOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  labelSelector: string;
  /** Starts the process of one pod on its IP; resolves once it serves. */
  start: (pod: { name: string; ip: string }) => Promise<ManagedProcess>;
  pollIntervalMs?: number;
}

export function servePodsLocally(options: PodProcessesOptions): PodProcesses {
  const core = options.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const served = new Map<string, ServedPod>();
  const starting = new Map<string, Promise<void>>();
  const errors: Error[] = [];
  let stopped = false;

  const setReady = async (name: string, ready: boolean) => {
    // Read and replace, so a change meanwhile is a conflict to retry, never overwritten.
    for (let attempt = 0; ; attempt++) {
      const pod = await core.readNamespacedPodStatus({ name, namespace: options.namespace });
      const status = ready ? 'True' : 'False';
      const conditions = (pod.status?.conditions ?? []).map((condition) =>
        condition.type === 'Ready' && condition.status !== status ? { ...condition, status, lastTransitionTime: new Date() } : condition,
      );
      try {
        await core.replaceNamespacedPodStatus({ name, namespace: options.namespace, body: { ...pod, status: { ...pod.status, conditions } } });
        return;
      } catch (error) {
        if ((error as { code?: number }).code !== 409 || attempt >= 5) throw error;
      }
    }
  };

  const serve = async (name: string, ip: string) => {
    try {
      await setReady(name, false);
      const process = await options.start({ name, ip });
      if (stopped) return void (await process.stop());
      served.set(name, { pod: name, ip, process });
      await setReady(name, true);
    } catch (error) {
      if (!stopped && (error as { code?: number }).code !== 404) errors.push(new Error(`serving pod ${name} at ${ip}`, { cause: error }));
    }
  };

  const poll = async () => {
    const { items } = await core.listNamespacedPod({ namespace: options.namespace, labelSelector: options.labelSelector });
    const running = new Map<string, string>();
    for (const pod of items) {
      const ip = pod.status?.podIP;
      if (ip && pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp) running.set(pod.metadata!.name!, ip);
    }
    for (const [name, ip] of running) {
      if (served.has(name) || starting.has(name)) continue;
      if (!ip.startsWith('127.')) throw new Error(`pod ${name} has IP ${ip}, outside 127.0.0.0/8: refusing to serve it`);
      starting.set(name, serve(name, ip).finally(() => starting.delete(name)));
    }
    for (const [name, entry] of served) {
      if (running.has(name)) continue;
      served.delete(name);
      await entry.process.stop(5_000);
    }
  };

  const loop = (async () => {
    while (!stopped) {
      await poll().catch((error: unknown) => {
        if (!stopped) errors.push(new Error('listing the pods to serve', { cause: error }));
      });
      await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? 200));
    }
  })();

  return {
    served,
    errors,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all(starting.values());
      await Promise.all([...served.values()].map((entry) => entry.process.stop(5_000)));
      served.clear();
    },
  };
}
