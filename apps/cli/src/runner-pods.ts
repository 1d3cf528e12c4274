// The runner pods as invoke and logs reach them through the API server: a request over a
// port-forward to one Ready runner, the logs of every runner (pods/log).
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { RUNNER_HTTP_PORT_NAME, RUNNER_POD_LABELS } from '@kublambda/crd-types';
import { describeError } from '@kublambda/reconcile-runtime';
import type { RunnerLogSource } from './logs-command.ts';
import { findPlatformPod, forbiddenMessage, listPlatformPods, requestOverPortForward, statusCode, type PlatformPodKind, type PodRequest, type PodResponse } from './pod-http.ts';

export const RUNNER_PODS: PlatformPodKind = {
  what: 'runner',
  labels: RUNNER_POD_LABELS,
  portName: RUNNER_HTTP_PORT_NAME,
  hint: 'is the platform installed (helm install, or npm run up) and its runner Deployment Available?',
};

/** Sends a request to the first Ready runner pod, as the runner Service would. */
export async function sendToRunner(kubeConfig: k8s.KubeConfig, platformNamespace: string, request: PodRequest): Promise<PodResponse> {
  return requestOverPortForward(kubeConfig, platformNamespace, await findPlatformPod(kubeConfig, platformNamespace, RUNNER_PODS), request);
}

/** Each runner pod that has started (its log may hold lines), with the container that serves lambdas. */
export function runnerLogSources(pods: k8s.V1Pod[]): RunnerLogSource[] {
  return pods
    .filter((pod) => pod.status?.phase === 'Running' || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
    .flatMap((pod) => {
      const containers = pod.spec?.containers ?? [];
      const serving = containers.find((c) => c.ports?.some((p) => p.name === RUNNER_HTTP_PORT_NAME)) ?? containers[0];
      return serving ? [{ pod: pod.metadata!.name!, container: serving.name }] : [];
    })
    .sort((a, b) => a.pod.localeCompare(b.pod));
}

export async function listRunnerLogSources(kubeConfig: k8s.KubeConfig, platformNamespace: string): Promise<RunnerLogSource[]> {
  return runnerLogSources(await listPlatformPods(kubeConfig, platformNamespace, RUNNER_PODS));
}

/** Streams a runner pod's log line by line through the API server; resolves when the API server ends it. */
export async function readRunnerLog(
  kubeConfig: k8s.KubeConfig,
  platformNamespace: string,
  source: RunnerLogSource,
  options: { follow: boolean; sinceSeconds?: number },
  onLine: (line: string) => void,
): Promise<void> {
  let partial = '';
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const ended = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const lines = new Writable({
    write(chunk, _encoding, done) {
      const text = partial + String(chunk);
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const line of parts) onLine(line);
      done();
    },
    final(done) {
      if (partial) onLine(partial);
      partial = '';
      done();
    },
  });
  lines.on('finish', () => finish());
  lines.on('error', (error) => fail(error));
  try {
    await new k8s.Log(kubeConfig).log(platformNamespace, source.pod, source.container, lines, { follow: options.follow, sinceSeconds: options.sinceSeconds });
  } catch (error) {
    const detail = describeError(error);
    if (statusCode(error) === 403 || /\b403\b|forbidden/i.test(detail)) throw new Error(forbiddenMessage(['get'], 'pods/log', platformNamespace, detail));
    throw new Error(`reading the log of runner pod ${platformNamespace}/${source.pod}: ${detail}`);
  }
  return ended;
}
