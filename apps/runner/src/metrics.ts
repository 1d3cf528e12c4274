import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface RunnerGauges {
  /** Pre-spawned workers ready for a cold start. */
  pooledWorkers: () => number;
}

/** What the runner reports on /metrics; the autoscaler reads kublambda_runner_in_flight_requests. */
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
  return {
    registry,
    inFlight: new Gauge({ name: 'kublambda_runner_in_flight_requests', help: 'Requests this runner is serving now.', registers: [registry] }),
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
