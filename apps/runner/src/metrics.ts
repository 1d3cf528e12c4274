import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface RunnerGauges {
  /** Pre-spawned workers ready for a cold start. */
  pooledWorkers: () => number;
  /** CPU seconds the runner and its workers have used since it started (a monotonic total). */
  cpuSeconds: () => number;
}

/** What the runner reports on /metrics; the autoscaler reads kublambda_runner_in_flight_requests, kublambda_runner_waiting_requests, kublambda_lambda_requests_total and kublambda_runner_cpu_seconds_total. */
export function createRunnerMetrics(gauges: RunnerGauges) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const lambdaLabels = ['namespace', 'lambda'] as const;
  new Gauge({
    name: 'kublambda_runner_pooled_workers',
    help: 'Pre-spawned workers ready to load a lambda on its first request.',
    registers: [registry],
    collect() {
      this.set(gauges.pooledWorkers());
    },
  });
  // A worker that exits between two readings moves from the live sum to the reaped total a
  // tick late at most; the counter keeps its highest value so it never goes back.
  let cpuCounted = 0;
  new Counter({
    name: 'kublambda_runner_cpu_seconds_total',
    help: 'CPU time used by this runner and all its workers (alive and exited), in seconds.',
    registers: [registry],
    collect() {
      const total = gauges.cpuSeconds();
      if (total > cpuCounted) this.inc(total - cpuCounted);
      cpuCounted = Math.max(cpuCounted, total);
    },
  });
  return {
    registry,
    inFlight: new Gauge({ name: 'kublambda_runner_in_flight_requests', help: 'Requests this runner is serving now.', registers: [registry] }),
    waiting: new Gauge({
      name: 'kublambda_runner_waiting_requests',
      help: 'Requests in flight that wait for a worker (one starting, or room in a busy one); counted in kublambda_runner_in_flight_requests too.',
      registers: [registry],
    }),
    requests: new Counter({
      name: 'kublambda_lambda_requests_total',
      help: 'Requests answered, by lambda and status code.',
      labelNames: [...lambdaLabels, 'code'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'kublambda_lambda_request_duration_seconds',
      help: 'Time from request to the end of the response, by lambda.',
      labelNames: lambdaLabels,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    coldStarts: new Histogram({
      name: 'kublambda_lambda_cold_start_duration_seconds',
      help: 'Time to start a worker and load the lambda, by lambda (the count is the number of cold starts).',
      labelNames: lambdaLabels,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

export type RunnerMetrics = ReturnType<typeof createRunnerMetrics>;
