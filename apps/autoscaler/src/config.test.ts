import { describe, expect, it } from '@jest/globals';
import { parseAutoscalerConfig as parseConfig } from './config.ts';
import type { Env } from '@kublambda/config';

/** In a pod, as the autoscaler runs: the API server is found by KUBERNETES_SERVICE_HOST. */
const parseAutoscalerConfig = (env: Env) => parseConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', ...env });

describe('parseAutoscalerConfig', () => {
  it('defaults to KPA settings, the runner in the pod namespace, and maps them to the scaling config', () => {
    const config = parseAutoscalerConfig({ POD_NAMESPACE: 'platform', POD_NAME: 'autoscaler-0' });
    expect(config.runner).toEqual({ namespace: 'platform', deployment: 'kublambda-runner', service: 'kublambda-runner', portName: 'http', discovery: { source: 'endpointslices' } });
    expect(config).toMatchObject({ scrapeIntervalMs: 1_000, scrapeTimeoutMs: 500, decisionIntervalMs: 2_000 });
    expect(config.leaderElection).toEqual({ identity: 'autoscaler-0', namespace: 'platform', leaseName: 'kublambda-autoscaler', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
    expect(config.admin).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(config.scaling).toEqual({
      targetConcurrencyPerPod: 70,
      targetCpuPerPod: undefined,
      stableWindowSeconds: 60,
      panicWindowSeconds: 6,
      panicThreshold: 2,
      maxScaleUpRate: 1_000,
      maxScaleDownRate: 2,
      scaleDownHysteresis: 0.1,
      scaleDownDelaySeconds: 0,
      podStartTimeoutSeconds: 60,
      minReplicas: 1,
      maxReplicas: 100,
    });
  });

  it('falls back to kublambda-system without POD_NAMESPACE', () => {
    const config = parseAutoscalerConfig({});
    expect(config.runner.namespace).toBe('kublambda-system');
    expect(config.leaderElection.namespace).toBe('kublambda-system');
  });

  it('reads every setting', () => {
    const config = parseAutoscalerConfig({
      RUNNER_NAMESPACE: 'runners', RUNNER_DEPLOYMENT: 'pool', RUNNER_SERVICE: 'pool-svc', RUNNER_PORT_NAME: 'web', RUNNER_DISCOVERY: 'pods', RUNNER_POD_SELECTOR: 'app=pool',
      SCRAPE_INTERVAL_MS: '1000', SCRAPE_TIMEOUT_MS: '200', DECISION_INTERVAL_MS: '1000',
      TARGET_CONCURRENCY: '5', TARGET_UTILIZATION: '0.8', TARGET_CPU_UTILIZATION: '0.5', RUNNER_CPU_CORES: '2',
      STABLE_WINDOW_SECONDS: '10', PANIC_WINDOW_PERCENT: '40', PANIC_THRESHOLD: '1.5', MAX_SCALE_UP_RATE: '10', MAX_SCALE_DOWN_RATE: '4',
      SCALE_DOWN_HYSTERESIS: '0', SCALE_DOWN_DELAY_SECONDS: '30', POD_START_TIMEOUT_SECONDS: '20', MIN_REPLICAS: '0', MAX_REPLICAS: '7',
      ADMIN_HOST: '127.0.0.1', ADMIN_PORT: '0', LEADER_ELECTION_NAMESPACE: 'leases', LEADER_ELECTION_LEASE: 'scaler', LEASE_DURATION_MS: '4000', RENEW_DEADLINE_MS: '3000', RETRY_PERIOD_MS: '500',
    });
    expect(config.runner).toEqual({ namespace: 'runners', deployment: 'pool', service: 'pool-svc', portName: 'web', discovery: { source: 'pods', labelSelector: 'app=pool' } });
    expect(config).toMatchObject({ scrapeIntervalMs: 1_000, scrapeTimeoutMs: 200, decisionIntervalMs: 1_000 });
    expect(config.leaderElection).toMatchObject({ namespace: 'leases', leaseName: 'scaler', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 0 });
    expect(config.scaling).toEqual({
      targetConcurrencyPerPod: 4,
      targetCpuPerPod: 1,
      stableWindowSeconds: 10,
      panicWindowSeconds: 4,
      panicThreshold: 1.5,
      maxScaleUpRate: 10,
      maxScaleDownRate: 4,
      scaleDownHysteresis: 0,
      scaleDownDelaySeconds: 30,
      podStartTimeoutSeconds: 20,
      minReplicas: 0,
      maxReplicas: 7,
    });
  });

  it('keeps the panic window at least one second', () => {
    expect(parseAutoscalerConfig({ STABLE_WINDOW_SECONDS: '4', PANIC_WINDOW_PERCENT: '1' }).scaling.panicWindowSeconds).toBe(1);
  });

  it('lists every bad value at once, each naming its variable', () => {
    expect(() =>
      parseAutoscalerConfig({
        RUNNER_NAMESPACE: 'Not_A_Namespace', SCRAPE_INTERVAL_MS: '1000', SCRAPE_TIMEOUT_MS: '1500', TARGET_CONCURRENCY: '0', TARGET_UTILIZATION: '1.2',
        STABLE_WINDOW_SECONDS: 'a minute', PANIC_THRESHOLD: '1', MAX_SCALE_DOWN_RATE: '-2', SCALE_DOWN_HYSTERESIS: '1', MIN_REPLICAS: '5', MAX_REPLICAS: '3', ADMIN_PORT: '70000',
      }),
    ).toThrow(
      [
        'autoscaler: invalid configuration:',
        '  - RUNNER_NAMESPACE must be a namespace name, not "Not_A_Namespace"',
        '  - SCRAPE_TIMEOUT_MS (1500) must be less than SCRAPE_INTERVAL_MS (1000): a round must end before the next one',
        '  - TARGET_CONCURRENCY must be a number greater than 0 and at most 1000000, not "0"',
        '  - TARGET_UTILIZATION must be a number greater than 0 and at most 1, not "1.2"',
        '  - STABLE_WINDOW_SECONDS must be a whole number from 2 to 3600, not "a minute"',
        '  - MIN_REPLICAS (5) must not be more than MAX_REPLICAS (3)',
        '  - PANIC_THRESHOLD must be a number greater than 1 and at most 100, not "1"',
        '  - MAX_SCALE_DOWN_RATE must be a number greater than 1 and at most 1000000, not "-2"',
        '  - SCALE_DOWN_HYSTERESIS must be a number at least 0 and less than 1, not "1"',
        '  - ADMIN_PORT must be a whole number from 0 to 65535, not "70000"',
      ].join('\n'),
    );
  });

  it('needs both CPU settings or neither', () => {
    expect(() => parseAutoscalerConfig({ TARGET_CPU_UTILIZATION: '0.6' })).toThrow('TARGET_CPU_UTILIZATION needs RUNNER_CPU_CORES');
    expect(() => parseAutoscalerConfig({ RUNNER_CPU_CORES: '2' })).toThrow('RUNNER_CPU_CORES is set but TARGET_CPU_UTILIZATION is not');
    expect(() => parseAutoscalerConfig({ TARGET_CPU_UTILIZATION: '0.6', RUNNER_CPU_CORES: 'two' })).toThrow('RUNNER_CPU_CORES must be a number greater than 0 and at most 1024, not "two"');
  });

  it('reads the pod selector with pod discovery only', () => {
    expect(() => parseAutoscalerConfig({ RUNNER_DISCOVERY: 'pods' })).toThrow('RUNNER_POD_SELECTOR is required with RUNNER_DISCOVERY=pods');
    expect(() => parseAutoscalerConfig({ RUNNER_POD_SELECTOR: 'app=x' })).toThrow('RUNNER_POD_SELECTOR is set but RUNNER_DISCOVERY is endpointslices');
    expect(() => parseAutoscalerConfig({ RUNNER_DISCOVERY: 'dns' })).toThrow('RUNNER_DISCOVERY must be endpointslices or pods, not "dns"');
  });

  it('keeps one scrape round a second, as the windows\' buckets need', () => {
    expect(() => parseAutoscalerConfig({ SCRAPE_INTERVAL_MS: '500', SCRAPE_TIMEOUT_MS: '200' })).toThrow('SCRAPE_INTERVAL_MS must be 1000, not "500": the windows keep 1-second buckets, one scrape round each');
  });

  it('refuses a renew deadline that is not shorter than the lease', () => {
    expect(() => parseAutoscalerConfig({ LEASE_DURATION_MS: '5000', RENEW_DEADLINE_MS: '5000' })).toThrow('RENEW_DEADLINE_MS (5000) must be less than LEASE_DURATION_MS (5000)');
  });

  it('refuses to start with no Kubernetes API server to talk to', () => {
    expect(() => parseConfig({ HOME: '/nonexistent' })).toThrow(
      'no Kubernetes API server to talk to: set KUBECONFIG, run in a pod (KUBERNETES_SERVICE_HOST), or put a kubeconfig at ~/.kube/config',
    );
    expect(parseConfig({ KUBECONFIG: '/etc/kubeconfig' }).runner.deployment).toBe('kublambda-runner');
  });
});
