// Measures, for new lambdas with an HTTP trigger, the time from `kubectl apply` to the first
// 200 answer. api-controller, builder and runner run as local processes against the real API
// server, Redis and S3; with no ingress controller here, requests go straight to the runner
// with the Ingress's path. A measurement, not a timed assertion: the figure goes to the log.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

const COUNT = 20;
const BASE_URL = 'http://lambdas.example.com';
let platform: LambdaPlatform;
let runner: string;

beforeAll(async () => {
  platform = await startLambdaPlatform('http-latency');
  await platform.startBuilder();
  await platform.startController(undefined, { EXTERNAL_BASE_URL: BASE_URL });
  runner = await platform.startRunner();
}, 90_000);
afterAll(async () => {
  await platform?.stop();
});

async function firstOk(url: string, body: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(url);
    const text = await response.text();
    if (response.status === 200 && text === body) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer "${body}" within ${timeoutMs} ms; last: ${response.status} ${text}`);
    await sleep(5);
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe(`${COUNT} new lambdas with HTTP triggers, one after another`, () => {
  it('answer 200 soon after kubectl apply, with status.url from the external base URL', async () => {
    const timesMs: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      const name = `fast-${i}`;
      const started = performance.now();
      await platform.apply(name, { source: { inline: `export default async () => new Response("${name}")` }, triggers: { http: { path: `/${name}` } } });
      await firstOk(`${runner}/${name}`, name, 30_000);
      timesMs.push(performance.now() - started);
    }
    const sorted = [...timesMs].sort((a, b) => a - b);
    console.log(
      `kubectl apply to first 200, ${COUNT} lambdas: p50 ${percentile(sorted, 50).toFixed(0)} ms, p90 ${percentile(sorted, 90).toFixed(0)} ms, ` +
        `min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`,
    );
    const last = await platform.waitFor(`fast-${COUNT - 1}`, 'Ready', isReady);
    expect(last!.status!.url).toBe(`${BASE_URL}/fast-${COUNT - 1}`);
  }, 300_000);
});
