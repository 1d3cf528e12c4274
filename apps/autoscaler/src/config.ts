import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { EnvReader, readLeaderElection, type Env, type LeaderElectionSettings } from '@kublambda/config';
import type { ScalingConfig } from './decide-scale.ts';

export interface AutoscalerConfig {
  /** The runner Deployment it scales and the Service whose EndpointSlices list the runner pods. */
  runner: { namespace: string; deployment: string; service: string; portName: string; discovery: RunnerDiscovery };
  scrapeIntervalMs: number;
  scrapeTimeoutMs: number;
  decisionIntervalMs: number;
  scaling: ScalingConfig;
  /** /healthz and /metrics. */
  admin: { host: string; port: number };
  /** The Lease; its identity also names this replica in Events. */
  leaderElection: LeaderElectionSettings;
  relistIntervalMs: number;
}

/** Where the Ready runner pods are found: the Service's EndpointSlices, or the pods matching a label selector. */
export type RunnerDiscovery = { source: 'endpointslices' } | { source: 'pods'; labelSelector: string };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseAutoscalerConfig(env: Env): AutoscalerConfig {
  const read = new EnvReader(env);
  const podNamespace = read.string('POD_NAMESPACE', 'kublambda-system');
  const runner = {
    namespace: read.string('RUNNER_NAMESPACE', podNamespace),
    deployment: read.string('RUNNER_DEPLOYMENT', 'kublambda-runner'),
    service: read.string('RUNNER_SERVICE', 'kublambda-runner'),
    portName: read.string('RUNNER_PORT_NAME', 'http'),
    discovery: readDiscovery(read, env),
  };
  if (!DNS_LABEL.test(runner.namespace) || runner.namespace.length > 63) read.problem(`RUNNER_NAMESPACE must be a namespace name, not "${runner.namespace}"`);
  if (!DNS_SUBDOMAIN.test(runner.deployment) || runner.deployment.length > 253) read.problem(`RUNNER_DEPLOYMENT must be a Deployment name, not "${runner.deployment}"`);
  if (!DNS_LABEL.test(runner.service) || runner.service.length > 63) read.problem(`RUNNER_SERVICE must be a Service name, not "${runner.service}"`);

  const scrapeIntervalMs = read.integer('SCRAPE_INTERVAL_MS', 1_000, { min: 1, max: 60_000 });
  // The windows hold 1-second buckets with one round's pool total each: faster rounds would add
  // up in a bucket, slower ones leave buckets empty (counted as no load).
  if (scrapeIntervalMs !== 1_000) read.problem(`SCRAPE_INTERVAL_MS must be 1000, not "${scrapeIntervalMs}": the windows keep 1-second buckets, one scrape round each`);
  const scrapeTimeoutMs = read.integer('SCRAPE_TIMEOUT_MS', 500, { min: 10, max: 60_000 });
  if (scrapeTimeoutMs >= scrapeIntervalMs) read.problem(`SCRAPE_TIMEOUT_MS (${scrapeTimeoutMs}) must be less than SCRAPE_INTERVAL_MS (${scrapeIntervalMs}): a round must end before the next one`);
  const decisionIntervalMs = read.integer('DECISION_INTERVAL_MS', 2_000, { min: 100, max: 600_000 });

  const targetConcurrency = read.number('TARGET_CONCURRENCY', 100, { min: 0, max: 1_000_000, minExclusive: true });
  const targetUtilization = read.number('TARGET_UTILIZATION', 0.7, { min: 0, max: 1, minExclusive: true });
  // TARGET_CPU_UTILIZATION and RUNNER_CPU_CORES go together: the CPU per pod to aim for.
  const cpuUtilization = env.TARGET_CPU_UTILIZATION?.trim() ? read.number('TARGET_CPU_UTILIZATION', 0.7, { min: 0, max: 1, minExclusive: true }) : undefined;
  const cpuCores = env.RUNNER_CPU_CORES?.trim() ? read.number('RUNNER_CPU_CORES', 1, { min: 0, max: 1_024, minExclusive: true }) : undefined;
  if (cpuUtilization !== undefined && cpuCores === undefined) read.problem('TARGET_CPU_UTILIZATION needs RUNNER_CPU_CORES, the cores of one runner pod (its CPU limit or request), for example 2');
  if (cpuCores !== undefined && cpuUtilization === undefined) read.problem('RUNNER_CPU_CORES is set but TARGET_CPU_UTILIZATION is not (CPU counts only with both)');
  const targetCpuPerPod = cpuUtilization !== undefined && cpuCores !== undefined ? cpuUtilization * cpuCores : undefined;
  const stableWindowSeconds = read.integer('STABLE_WINDOW_SECONDS', 60, { min: 2, max: 3_600 });
  const panicWindowPercent = read.number('PANIC_WINDOW_PERCENT', 10, { min: 1, max: 100 });
  const minReplicas = read.integer('MIN_REPLICAS', 1, { min: 0, max: 100_000 });
  const maxReplicas = read.integer('MAX_REPLICAS', 100, { min: 1, max: 100_000 });
  if (minReplicas > maxReplicas) read.problem(`MIN_REPLICAS (${minReplicas}) must not be more than MAX_REPLICAS (${maxReplicas})`);
  const scaling: ScalingConfig = {
    targetConcurrencyPerPod: targetConcurrency * targetUtilization,
    targetCpuPerPod,
    stableWindowSeconds,
    // Whole seconds, as the buckets are; at least one.
    panicWindowSeconds: Math.max(1, Math.round((stableWindowSeconds * panicWindowPercent) / 100)),
    panicThreshold: read.number('PANIC_THRESHOLD', 2, { min: 1, max: 100, minExclusive: true }),
    maxScaleUpRate: read.number('MAX_SCALE_UP_RATE', 1_000, { min: 1, max: 1_000_000, minExclusive: true }),
    maxScaleDownRate: read.number('MAX_SCALE_DOWN_RATE', 2, { min: 1, max: 1_000_000, minExclusive: true }),
    scaleDownHysteresis: read.number('SCALE_DOWN_HYSTERESIS', 0.1, { min: 0, max: 1, maxExclusive: true }),
    scaleDownDelaySeconds: read.integer('SCALE_DOWN_DELAY_SECONDS', 0, { min: 0, max: 3_600 }),
    podStartTimeoutSeconds: read.integer('POD_START_TIMEOUT_SECONDS', 60, { min: 1, max: 3_600 }),
    minReplicas,
    maxReplicas,
  };

  const adminHost = read.string('ADMIN_HOST', '0.0.0.0');
  if (!net.isIP(adminHost) && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(adminHost)) read.problem(`ADMIN_HOST must be an IP address or a host name, not "${adminHost}"`);
  const config: AutoscalerConfig = {
    runner,
    scrapeIntervalMs,
    scrapeTimeoutMs,
    decisionIntervalMs,
    scaling,
    admin: { host: adminHost, port: read.integer('ADMIN_PORT', 9090, { min: 0, max: 65_535 }) },
    leaderElection: readLeaderElection(read, 'kublambda-autoscaler'),
    relistIntervalMs: read.integer('RELIST_INTERVAL_MS', 600_000, { min: 1_000, max: 86_400_000 }),
  };
  const { renewDeadlineMs, leaseDurationMs } = config.leaderElection;
  if (renewDeadlineMs >= leaseDurationMs) read.problem(`RENEW_DEADLINE_MS (${renewDeadlineMs}) must be less than LEASE_DURATION_MS (${leaseDurationMs})`);
  // Without any of these the Kubernetes client falls back to http://localhost:8080 and the
  // autoscaler would wait there for ever instead of saying what is missing.
  if (!env.KUBECONFIG?.trim() && !env.KUBERNETES_SERVICE_HOST?.trim() && !(env.HOME && existsSync(path.join(env.HOME, '.kube', 'config')))) {
    read.problem('no Kubernetes API server to talk to: set KUBECONFIG, run in a pod (KUBERNETES_SERVICE_HOST), or put a kubeconfig at ~/.kube/config');
  }
  read.finish('autoscaler');
  return config;
}

function readDiscovery(read: EnvReader, env: Env): RunnerDiscovery {
  const source = read.string('RUNNER_DISCOVERY', 'endpointslices').toLowerCase();
  const labelSelector = env.RUNNER_POD_SELECTOR?.trim();
  if (source === 'pods') {
    if (!labelSelector) read.problem('RUNNER_POD_SELECTOR is required with RUNNER_DISCOVERY=pods: the label selector of the runner pods, for example app.kubernetes.io/name=kublambda-runner');
    return { source, labelSelector: labelSelector ?? '' };
  }
  if (source !== 'endpointslices') read.problem(`RUNNER_DISCOVERY must be endpointslices or pods, not "${env.RUNNER_DISCOVERY?.trim()}"`);
  else if (labelSelector) read.problem('RUNNER_POD_SELECTOR is set but RUNNER_DISCOVERY is endpointslices (it is read with RUNNER_DISCOVERY=pods only)');
  return { source: 'endpointslices' };
}
