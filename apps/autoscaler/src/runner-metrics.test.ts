import { describe, expect, it } from '@jest/globals';
import { parseRunnerMetrics, scrapeRunner, type FetchLike } from './runner-metrics.ts';

const exposition = `# HELP kublambda_runner_in_flight_requests Requests this runner is serving now.
# TYPE kublambda_runner_in_flight_requests gauge
kublambda_runner_in_flight_requests 7
# HELP kublambda_runner_waiting_requests Requests in flight that wait for a worker.
# TYPE kublambda_runner_waiting_requests gauge
kublambda_runner_waiting_requests 2
# TYPE kublambda_lambda_requests_total counter
kublambda_lambda_requests_total{namespace="ns",lambda="a",code="200"} 40
kublambda_lambda_requests_total{namespace="ns",lambda="b } \\"x\\"",code="503"} 2 1733100000000
kublambda_lambda_requests_total_extra 1000
# TYPE kublambda_runner_cpu_seconds_total counter
kublambda_runner_cpu_seconds_total 12.5
process_cpu_seconds_total 3
kublambda_lambda_request_duration_seconds_bucket{namespace="ns",lambda="a",le="+Inf"} 42
`;

describe('parseRunnerMetrics', () => {
  it('sums each metric over its series and ignores the rest', () => {
    expect(parseRunnerMetrics(exposition)).toEqual({ inFlight: 7, waiting: 2, answered: 42, cpuSeconds: 12.5 });
  });

  it('counts no answers and no waiting before the first request', () => {
    expect(parseRunnerMetrics('kublambda_runner_in_flight_requests 0\nkublambda_runner_cpu_seconds_total 0.25\n')).toEqual({ inFlight: 0, waiting: 0, answered: 0, cpuSeconds: 0.25 });
  });

  it('refuses text without the metrics every runner exports, or with a value that is not a number', () => {
    expect(() => parseRunnerMetrics('<html>not metrics</html>')).toThrow('no kublambda_runner_in_flight_requests');
    expect(() => parseRunnerMetrics('kublambda_runner_in_flight_requests 1\n')).toThrow('no kublambda_runner_cpu_seconds_total');
    expect(() => parseRunnerMetrics('kublambda_runner_in_flight_requests NaN\nkublambda_runner_cpu_seconds_total 1\n')).toThrow('has no numeric value');
    expect(() => parseRunnerMetrics('kublambda_lambda_requests_total{code="200 1\n')).toThrow('unterminated label set');
  });
});

describe('scrapeRunner', () => {
  const answering = (status: number, body: string): FetchLike => async () => ({ ok: status === 200, status, text: async () => body });

  it('returns the sample of a runner that answers', async () => {
    expect(await scrapeRunner('http://127.1.0.2:8080/metrics', 500, { fetch: answering(200, exposition) })).toEqual({ inFlight: 7, waiting: 2, answered: 42, cpuSeconds: 12.5 });
  });

  it('turns every failure into no sample, saying why', async () => {
    const reasons: string[] = [];
    const onFailure = (reason: string) => reasons.push(reason);
    const refused: FetchLike = async () => {
      throw new TypeError('fetch failed');
    };
    const silent: FetchLike = (_url, { signal }) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    expect(await scrapeRunner('http://127.1.0.2:8080/metrics', 500, { fetch: refused, onFailure })).toBeUndefined();
    expect(await scrapeRunner('http://127.1.0.2:8080/metrics', 20, { fetch: silent, onFailure })).toBeUndefined();
    expect(await scrapeRunner('http://127.1.0.2:8080/metrics', 500, { fetch: answering(503, ''), onFailure })).toBeUndefined();
    expect(await scrapeRunner('http://127.1.0.2:8080/metrics', 500, { fetch: answering(200, 'garbage'), onFailure })).toBeUndefined();
    expect(reasons).toEqual([
      'scraping http://127.1.0.2:8080/metrics: fetch failed',
      'scraping http://127.1.0.2:8080/metrics: no answer within 20 ms',
      'scraping http://127.1.0.2:8080/metrics: HTTP 503',
      'scraping http://127.1.0.2:8080/metrics: no kublambda_runner_in_flight_requests in the runner\'s metrics',
    ]);
  });
});
