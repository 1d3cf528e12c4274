// The runner runs as a local process (no kubelet here) against real Redis and S3 servers;
// assets are stored and routes published the way api-controller does it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { waitUntil } from '@kublambda/dev-servers';
import { removeRoute, type RouteRecord } from '@kublambda/route-table';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

let runner: RunnerUnderTest;
let base: string;

function deploy(name: string, pathPrefix: string, source: string, generation = 1, settings: Partial<RouteRecord> = {}): Promise<RouteRecord['artifact']> {
  return runner.publish(source, {
    namespace: 'test', name, pathPrefix, timeoutSeconds: 2, concurrency: 10, env: [{ name: 'GREETING', value: 'hi' }], generation, ...settings,
  });
}

const echo = `export default async (request, context) => {
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array();
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', body)), (b) => b.toString(16).padStart(2, '0')).join('');
  return Response.json({
    method: request.method, url: request.url, headers: [...request.headers], bodyBytes: body.length, bodySha256: digest,
    requestId: context.requestId, env: Object.keys(process.env).sort(), greeting: process.env.GREETING,
  }, { headers: [['set-cookie', 'a=1'], ['set-cookie', 'b=2']] });
};`;

beforeAll(async () => {
  runner = await startRunnerUnderTest({ env: { MAX_BODY_MIB: '16', MAX_WORKERS_PER_LAMBDA: '2' } });
  base = runner.base;
  // Uploads of 10-17 MB take a while on a busy machine: the echo's timeout is no test's subject.
  await deploy('echo', '/echo', echo, 1, { timeoutSeconds: 30 });
  await deploy('thrower', '/throw', 'export default async () => { throw new Error("kaboom"); }');
  await deploy('versioned', '/version', 'export default async () => new Response("v1")');
  await deploy('spinner', '/spin', 'export default async () => { while (true) {} }');
  await deploy('quitter', '/quit', 'export default async () => { process.exit(7); }');
  await deploy('steady', '/steady', 'export default async () => new Response("steady")');
  await deploy('sleeper', '/sleep', 'export default async () => { await new Promise((r) => setTimeout(r, 700)); return new Response("rested"); }');
});
afterAll(() => runner?.stop());

describe('runner', () => {
  it('hands the lambda the request below its prefix and streams the answer back', async () => {
    const response = await fetch(`${base}/echo/items/7?sort=asc&sort=desc`, { headers: [['x-custom', 'one'], ['x-custom', 'two'], ['x-request-id', 'req-123']] });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('req-123');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const seen = (await response.json()) as { method: string; url: string; headers: Array<[string, string]>; requestId: string; env: string[]; greeting: string };
    expect(seen.method).toBe('GET');
    expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe('/items/7?sort=asc&sort=desc');
    expect(seen.requestId).toBe('req-123');
    const headers = new Map(seen.headers);
    expect(headers.get('x-custom')).toBe('one, two');
    expect(headers.get('x-forwarded-prefix')).toBe('/echo');
    expect(headers.get('x-forwarded-for')).toBe('127.0.0.1');
    // The lambda sees its own env, none of the runner's (Redis, S3 credentials, the env encryption keys).
    expect(seen.greeting).toBe('hi');
    expect(seen.env).toEqual(['GREETING']);
  });

  it('generates a request id when none is sent', async () => {
    const response = await fetch(`${base}/echo`);
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('replaces a request id it could not send back (too long, or not printable ASCII)', async () => {
    for (const given of ['x'.repeat(201), 'caf\u00e9']) {
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`${base}/echo`, { headers: { 'x-request-id': Buffer.from(given, 'latin1').toString('latin1') } }, resolve).on('error', reject);
      });
      response.resume();
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('answers malformed and oversized requests with 400 and 431, and keeps serving', async () => {
    const rawAnswer = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(base).port), '127.0.0.1', () => socket.end(bytes));
        let answer = '';
        socket.on('data', (chunk) => (answer += chunk.toString()));
        socket.on('close', () => resolve(answer));
        // The server may reset the connection once it has answered, before reading all we sent.
        socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
      });
    expect(await rawAnswer('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // Up to 1 MiB of headers is taken (a watch event's ce-oldobject can be hundreds of KiB); more is refused.
    const big = await fetch(`${base}/echo`, { headers: { 'x-big': 'a'.repeat(300 * 1024) } });
    expect(big.status).toBe(200);
    expect(((await big.json()) as { headers: string[][] }).headers.find(([name]) => name === 'x-big')?.[1]?.length).toBe(300 * 1024);
    expect(await rawAnswer(`GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1100 * 1024)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${base}/echo`)).status).toBe(200);
  });

  it('sends a whole body with its true length, whatever length the lambda claimed', async () => {
    await deploy('liar', '/liar', `export default () => new Response('hello', { headers: { 'content-length': '100' } })`);
    const response = await fetch(`${base}/liar`, { signal: AbortSignal.timeout(5_000) });
    expect(response.headers.get('content-length')).toBe('5');
    expect(await response.text()).toBe('hello');
  });

  it("keeps the lambda's connection headers off the runner's own connection", async () => {
    await deploy('hopper', '/hopper', `export default () => new Response('hop', { headers: { connection: 'close', 'transfer-encoding': 'chunked', 'keep-alive': 'timeout=1', 'x-kept': 'yes' } })`);
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${base}/hopper`, resolve).on('error', reject);
    });
    let body = '';
    for await (const chunk of response) body += chunk;
    expect(body).toBe('hop');
    expect(response.headers).toMatchObject({ 'x-kept': 'yes', 'content-length': '3' });
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(response.headers.connection).not.toBe('close');
  });

  it('streams a 10 MB upload through to the lambda', async () => {
    const body = randomBytes(10 * 1024 * 1024);
    const response = await fetch(`${base}/echo/upload`, { method: 'POST', body });
    expect(response.status).toBe(200);
    const seen = (await response.json()) as { bodyBytes: number; bodySha256: string };
    expect(seen.bodyBytes).toBe(body.length);
    expect(seen.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('refuses a body over the limit with 413', async () => {
    const response = await fetch(`${base}/echo/upload`, { method: 'POST', body: randomBytes(17 * 1024 * 1024) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'PayloadTooLarge', message: 'the request body is larger than 16777216 bytes' });
  });

  it('answers an unknown path with 404 and a JSON body', async () => {
    const response = await fetch(`${base}/nothing/here`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toMatchObject({ error: 'NoRoute', message: 'no lambda serves /nothing/here', requestId: expect.any(String) });
  });

  it('answers a throwing handler with 502 and keeps serving', async () => {
    const response = await fetch(`${base}/throw`);
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: 'HandlerError', message: expect.stringContaining('kaboom') });
    expect((await fetch(`${base}/echo`)).status).toBe(200);
  });

  it('serves a new asset as soon as its route is published, without a restart', async () => {
    expect(await (await fetch(`${base}/version`)).text()).toBe('v1');
    await deploy('versioned', '/version', 'export default async () => new Response("v2")', 2);
    await waitUntil('the new version', async () => (await (await fetch(`${base}/version`)).text()) === 'v2', { timeoutMs: 10_000 });
  });

  it('serves new env values of the same asset and generation with a new worker', async () => {
    const source = 'export default async () => new Response(process.env.TOKEN)';
    await deploy('rotating', '/rotating', source, 1, { env: [{ name: 'TOKEN', value: 'first' }] });
    expect(await (await fetch(`${base}/rotating`)).text()).toBe('first');
    await deploy('rotating', '/rotating', source, 1, { env: [{ name: 'TOKEN', value: 'second' }] });
    await waitUntil('the new value', async () => (await (await fetch(`${base}/rotating`)).text()) === 'second', { timeoutMs: 10_000 });
  });

  it('keeps one lambda answering while others spin or exit, and replaces the broken workers', async () => {
    expect(await (await fetch(`${base}/steady`)).text()).toBe('steady');
    const spinning = fetch(`${base}/spin`);
    const quitting = fetch(`${base}/quit`);
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const response = await fetch(`${base}/steady`);
      expect(await response.text()).toBe('steady');
      latencies.push(performance.now() - started);
    }
    // A generous bound: the point is that nobody waits for the 2 s timeout of the spinning lambda.
    expect(Math.max(...latencies)).toBeLessThan(1_000);
    const quit = await quitting;
    expect(quit.status).toBe(502);
    expect(await quit.json()).toMatchObject({ error: 'WorkerExited' });
    const spun = await spinning;
    expect(spun.status).toBe(504);
    expect(await spun.json()).toMatchObject({ error: 'Timeout' });
    // The next request gets a fresh worker.
    const again = await fetch(`${base}/quit`);
    expect(again.status).toBe(502);
    expect((await fetch(`${base}/steady`)).status).toBe(200);
  });

  it('reports health, readiness and metrics, with in-flight requests for the autoscaler', async () => {
    expect((await fetch(`${base}/echo`)).status).toBe(200);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({ status: 'ready' });

    const slow = fetch(`${base}/sleep`);
    await waitUntil('the slow request to be in flight', async () => /^kublambda_runner_in_flight_requests 1$/m.test(await (await fetch(`${base}/metrics`)).text()), { intervalMs: 20, timeoutMs: 5_000 });
    expect((await slow).status).toBe(200);

    // The runner counts a request done when its response closes, just after the client has it.
    const metrics = await waitUntil('no request in flight', async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return /^kublambda_runner_in_flight_requests 0$/m.test(text) && text;
    }, { intervalMs: 20, timeoutMs: 5_000 });
    const served = Number(metrics.match(/^kublambda_lambda_requests_total\{namespace="test",lambda="echo",code="200"\} (\d+)$/m)?.[1]);
    expect(served).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^kublambda_lambda_request_duration_seconds_count\{namespace="test",lambda="echo"\} \d+$/m);
    expect(metrics).toMatch(/^kublambda_lambda_cold_start_duration_seconds_count\{namespace="test",lambda="echo"\} 1$/m);
    // The pool refills to its size after the cold starts.
    await waitUntil('a full pool', async () => /^kublambda_runner_pooled_workers 2$/m.test(await (await fetch(`${base}/metrics`)).text()), { intervalMs: 50, timeoutMs: 10_000 });
  });

  it('adds a worker when every worker of a lambda is at its concurrency, up to the maximum, then lets requests wait', async () => {
    // A timeout far above the 800 ms: the third request waits for one of the others, and a
    // worker spawned on a busy machine may take seconds; timing is not this test's subject.
    await deploy('single', '/single', 'export default async () => { await new Promise((r) => setTimeout(r, 800)); return new Response(String(process.pid)); }', 1, { concurrency: 1, timeoutSeconds: 30 });
    await waitUntil('the route', async () => (await fetch(`${base}/single`)).status === 200, { timeoutMs: 10_000 });
    const answers = await Promise.all([1, 2, 3].map(async () => {
      const response = await fetch(`${base}/single`);
      return { status: response.status, pid: await response.text() };
    }));
    // Two workers (the maximum here) with room for one request each; the third waited for one.
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(new Set(answers.map((answer) => answer.pid)).size).toBe(2);
  });

  it('cancels the request in the worker when the client goes away mid-response', async () => {
    // Concurrency 1: a request left running in the worker would hold the only place.
    await deploy('ticker', '/ticker', `export default async (request) => {
      request.signal.addEventListener('abort', () => console.log('the client went away'));
      let tick = 0;
      return new Response(new ReadableStream({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          controller.enqueue(new TextEncoder().encode('tick ' + tick++ + '\\n'));
        },
      }));
    }`, 1, { concurrency: 1, timeoutSeconds: 30 });
    const firstChunk = await new Promise<string>((resolve, reject) => {
      const call = http.get(`${base}/ticker`, (response) => {
        response.once('data', (chunk: Buffer) => {
          call.destroy();
          resolve(chunk.toString());
        });
      });
      call.on('error', reject);
    });
    expect(firstChunk).toMatch(/^tick 0/);
    // Workers run at a lower priority than the runner: on a busy machine the log line may take a while.
    await waitUntil('the lambda to see the abort', async () => /"message":"the client went away"/.test(await readFile(runner.process.logFile, 'utf8')), { timeoutMs: 30_000 });
    // The place is free again: a new request is served at once, not queued behind the old one.
    const next = await fetch(`${base}/ticker`);
    const reader = next.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^tick 0/);
    await reader.cancel();
  });

  it('fetches an announced asset before its first request', async () => {
    const artifact = await deploy('prefetched', '/prefetched', 'export default async () => new Response("ready early")');
    const cached = path.join(runner.dir, 'cache', `${artifact.digest.replace('sha256:', '')}.mjs`);
    await waitUntil('the asset in the cache', () => readFile(cached).then(() => true, () => false), { intervalMs: 20, timeoutMs: 10_000 });
    expect(await (await fetch(`${base}/prefetched`)).text()).toBe('ready early');
  });

  it('stops the worker of a lambda whose route is removed', async () => {
    await deploy('ephemeral', '/ephemeral', 'export default async () => new Response("here")');
    await waitUntil('the route', async () => (await fetch(`${base}/ephemeral`)).status === 200, { timeoutMs: 10_000 });
    await removeRoute(runner.client, 'test/ephemeral');
    const retired = /"lambda":"ephemeral".*"message":"retired workers"|"message":"retired workers".*"lambda":"ephemeral"/;
    await waitUntil('the worker to be retired', async () => retired.test(await readFile(runner.process.logFile, 'utf8')), { timeoutMs: 10_000 });
    expect((await fetch(`${base}/ephemeral`)).status).toBe(404);
  });
});
