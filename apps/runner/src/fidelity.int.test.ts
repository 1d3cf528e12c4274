// Request/response fidelity of the runner: what a client sends reaches the lambda unchanged, what
// the lambda answers reaches the client unchanged, bodies stream both ways, a route change takes
// effect without a restart while requests on the old version finish, and spec.concurrency bounds
// a worker. The runner runs as a local process (no kubelet here) against real Redis and S3
// servers; assets are stored and routes published the way api-controller does it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { waitUntil } from '@kublambda/dev-servers';
import type { RouteRecord } from '@kublambda/route-table';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

let runner: RunnerUnderTest;
let base: string;
let port: number;

async function deploy(name: string, pathPrefix: string, source: string, settings: Partial<RouteRecord> = {}): Promise<void> {
  await runner.publish(source, { namespace: 'fidelity', name, pathPrefix, timeoutSeconds: 10, concurrency: 10, ...settings });
}

// Reports everything the lambda saw, in the body and (for HEAD, which has no body) in a header.
const echoLambda = `export default async (request, context) => {
  const url = new URL(request.url);
  const seen = {
    method: request.method, host: url.host, path: url.pathname, search: url.search, query: [...url.searchParams],
    headers: Object.fromEntries(request.headers), body: request.body ? await request.text() : null,
    requestId: context.requestId, clientAddress: context.clientAddress,
  };
  return Response.json(seen, { headers: { 'x-seen': Buffer.from(JSON.stringify(seen)).toString('base64url') } });
};`;

// POST: answers the exact bytes it received, with their digest as it computed it.
// GET: answers every byte value, ?repeat times.
const bytesLambda = `import { createHash } from 'node:crypto';
export default async (request) => {
  if (request.method === 'GET') {
    const repeat = Number(new URL(request.url).searchParams.get('repeat') ?? '1');
    const bytes = new Uint8Array(256 * repeat).map((_, index) => index % 256);
    return new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } });
  }
  const bytes = new Uint8Array(await request.arrayBuffer());
  return new Response(bytes, { headers: { 'content-type': 'application/octet-stream', 'x-received-sha256': createHash('sha256').update(bytes).digest('hex') } });
};`;

// Produces "first" and "second" with delays, then holds the last chunk until a request to
// /release says the client has the first one (or 5 s pass, which the last chunk then says).
const streamLambda = `const releases = new Map();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export default async (request) => {
  const url = new URL(request.url);
  const id = url.searchParams.get('id');
  if (url.pathname === '/release') {
    const release = releases.get(id);
    release?.('released');
    return new Response(release ? 'released' : 'nothing to release');
  }
  const released = new Promise((resolve) => {
    releases.set(id, resolve);
    setTimeout(resolve, 5000, 'not released within 5 s');
  });
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    async start(controller) {
      await sleep(20);
      controller.enqueue(encoder.encode('first\\n'));
      await sleep(50);
      controller.enqueue(encoder.encode('second\\n'));
      const how = await released;
      releases.delete(id);
      controller.enqueue(encoder.encode('last: ' + how + '\\n'));
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/plain' } });
};`;

// Reads the upload as it arrives and reports progress every MiB in its streamed answer, so the
// client can see the lambda working on a body it has not finished sending.
const uploadLambda = `import { createHash } from 'node:crypto';
export default async (request) => {
  const reader = request.body.getReader();
  const hash = createHash('sha256');
  const encoder = new TextEncoder();
  let received = 0;
  let reported = 0;
  return new Response(new ReadableStream({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          controller.enqueue(encoder.encode('done ' + received + ' ' + hash.digest('hex') + '\\n'));
          return controller.close();
        }
        hash.update(value);
        received += value.byteLength;
        if (received - reported >= 1024 * 1024) {
          reported = received;
          return controller.enqueue(encoder.encode('received ' + received + '\\n'));
        }
      }
    },
  }), { headers: { 'content-type': 'text/plain' } });
};`;

// /status/<code>: answers that status with a body and headers of its own (none for 204 and 304).
const statusLambda = `export default async (request) => {
  const code = Number(new URL(request.url).pathname.split('/')[1]);
  if (code === 204) return new Response(null, { status: 204, headers: { 'x-from-lambda': 'yes' } });
  if (code === 304) return new Response(null, { status: 304, headers: { 'x-from-lambda': 'yes', etag: '"v1"' } });
  const headers = { 'content-type': 'text/plain', 'x-from-lambda': 'yes' };
  if (code === 201) headers.location = '/status/items/1';
  if (code === 301) headers.location = '/status/200';
  return new Response('lambda answered ' + code, { status: code, headers });
};`;

// Headers the lambda sets itself: repeated ones, and a content-length for a whole and a streamed body.
const headersLambda = `export default async (request) => {
  const { pathname } = new URL(request.url);
  if (pathname === '/cookies') {
    return new Response('two cookies', { headers: [['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; HttpOnly'], ['x-multi-out', 'one'], ['x-multi-out', 'two']] });
  }
  if (pathname === '/sized-whole') return new Response('hello world', { headers: { 'content-length': '11' } });
  if (pathname === '/sized-stream') {
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      async start(controller) {
        controller.enqueue(encoder.encode('hello '));
        await new Promise((resolve) => setTimeout(resolve, 50));
        controller.enqueue(encoder.encode('world'));
        controller.close();
      },
    });
    return new Response(body, { headers: { 'content-length': '11' } });
  }
  return new Response('no such page', { status: 404 });
};`;

// A Hono-style app: a { fetch } object with a tiny router that relies on \`this\`, the lambda env
// and ctx.waitUntil. Jobs run in the background after the answer; /jobs/<id> waits for a
// /jobs/<id>/release request, /jobs/<id>?ms=<n> for a timer, after which it logs.
const appLambda = `const waiting = new Map();
const finished = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export default {
  routes: [
    ['GET', /^\\/greet\\/([^/]+)$/, (request, env, ctx, [name]) => Response.json({ message: env.GREETING + ', ' + decodeURIComponent(name), requestId: ctx.requestId })],
    ['GET', /^\\/version$/, (request, env) => new Response(env.VERSION)],
    ['GET', /^\\/jobs$/, () => Response.json({ waiting: [...waiting.keys()], finished })],
    ['POST', /^\\/jobs\\/([^/]+)$/, (request, env, ctx, [id]) => {
      const ms = new URL(request.url).searchParams.get('ms');
      const work = ms ? sleep(Number(ms)) : new Promise((resolve) => waiting.set(id, resolve));
      ctx.waitUntil(work.then(() => {
        finished.push(id);
        console.log('job ' + id + ' finished');
      }));
      return new Response(null, { status: 202 });
    }],
    ['POST', /^\\/jobs\\/([^/]+)\\/release$/, (request, env, ctx, [id]) => {
      waiting.get(id)?.();
      waiting.delete(id);
      return new Response('released ' + id);
    }],
  ],
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    for (const [method, pattern, handle] of this.routes) {
      const match = pattern.exec(pathname);
      if (match && request.method === method) return handle(request, env, ctx, match.slice(1));
    }
    return new Response('the app has no ' + request.method + ' ' + pathname, { status: 404 });
  },
};`;

// ?hold=<ms> keeps the request in flight that long; the answer names the worker process.
const busyLambda = `export default async (request) => {
  const hold = Number(new URL(request.url).searchParams.get('hold') ?? '0');
  await new Promise((resolve) => setTimeout(resolve, hold));
  return new Response(String(process.pid));
};`;

// v1 holds a request (not ?warm ones) long enough for a new version to be published and served.
const SWAP_HOLD_MS = 2500;
const swapV1 = `export default async (request) => {
  if (new URL(request.url).searchParams.has('warm')) return new Response('v1 warm');
  await new Promise((resolve) => setTimeout(resolve, ${SWAP_HOLD_MS}));
  return new Response('v1');
};`;
const swapV2 = `export default async () => new Response('v2');`;

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** A request through node:http on a fresh connection, so raw headers and bytes are seen as sent. */
function rawRequest(url: string, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, rawHeaders: response.rawHeaders, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

function rawHeaderValues(rawHeaders: string[], name: string): string[] {
  return rawHeaders.flatMap((value, index) => (index % 2 === 0 && value.toLowerCase() === name ? [rawHeaders[index + 1]!] : []));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The runner's count of requests in flight, which include those waiting in a handler. */
async function waitForInFlight(count: number): Promise<void> {
  const gauge = new RegExp(`^kublambda_runner_in_flight_requests ${count}$`, 'm');
  await waitUntil(`${count} requests in flight`, async () => gauge.test(await (await fetch(`${base}/metrics`)).text()), { intervalMs: 20, timeoutMs: 10_000 });
}

interface Seen {
  method: string;
  host: string;
  path: string;
  search: string;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  body: string | null;
  requestId: string;
  clientAddress: string;
}

function seenOf(response: Response): Seen {
  const header = response.headers.get('x-seen');
  if (!header) throw new Error(`the answer (status ${response.status}) has no x-seen header: it did not come from the echo lambda`);
  return JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Seen;
}

beforeAll(async () => {
  // One worker per lambda, so requests over spec.concurrency wait for that worker.
  runner = await startRunnerUnderTest({ env: { MAX_BODY_MIB: '16', MAX_WORKERS_PER_LAMBDA: '1' } });
  base = runner.base;
  port = runner.port;
  await Promise.all([
    deploy('echo', '/echo', echoLambda),
    deploy('bytes', '/bytes', bytesLambda),
    deploy('stream', '/stream', streamLambda),
    deploy('upload', '/upload', uploadLambda),
    deploy('status', '/status', statusLambda),
    deploy('headers', '/headers', headersLambda),
    deploy('app', '/app', appLambda, { env: [{ name: 'GREETING', value: 'hello' }, { name: 'VERSION', value: '1' }] }),
    deploy('busy', '/busy', busyLambda, { concurrency: 2 }),
    deploy('swap', '/swap', swapV1),
  ]);
});

afterAll(() => runner?.stop());

describe('runner request fidelity', () => {
  // Percent-encoding, an encoded slash, repeated keys, an empty value and a "+" that must stay "+".
  const pathBelow = '/items/a%20b/%E2%9C%93/x%2Fy';
  const search = '?q=a%20b&q=c%2Fd&empty=&plus=1%2B1&emoji=%F0%9F%98%80';

  it.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])('passes a %s request to the lambda as the client sent it', async (method) => {
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const response = await fetch(`${base}/echo${pathBelow}${search}`, {
      method,
      headers: [['x-multi', 'one'], ['x-multi', 'two'], ['x-forwarded-for', '203.0.113.7'], ['x-request-id', `fidelity-${method}`]],
      body: hasBody ? `payload of ${method}` : undefined,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe(`fidelity-${method}`);
    const seen = seenOf(response);
    expect(seen.method).toBe(method);
    expect(seen.host).toBe(`127.0.0.1:${port}`);
    expect(seen.path).toBe(pathBelow);
    // The original path is the prefix the runner strips plus what the lambda sees.
    expect(seen.headers['x-forwarded-prefix']).toBe('/echo');
    expect(seen.headers['x-forwarded-prefix'] + seen.path).toBe(`/echo${pathBelow}`);
    expect(seen.search).toBe(search);
    expect(seen.query).toEqual([['q', 'a b'], ['q', 'c/d'], ['empty', ''], ['plus', '1+1'], ['emoji', '😀']]);
    // Two x-multi headers: a fetch Headers object reads repeated request headers as one list.
    expect(seen.headers['x-multi']).toBe('one, two');
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers['x-request-id']).toBe(`fidelity-${method}`);
    expect(seen.requestId).toBe(`fidelity-${method}`);
    expect(seen.clientAddress).toBe('127.0.0.1');
    expect(seen.body).toBe(hasBody ? `payload of ${method}` : null);
    const body = Buffer.from(await response.arrayBuffer());
    if (method === 'HEAD') expect(body.length).toBe(0);
    else expect(JSON.parse(body.toString('utf8'))).toEqual(seen);
  });

  it.each([
    ['/echo', '/', ''],
    ['/echo/', '/', ''],
    ['/echo?x=1', '/', '?x=1'],
    ['/echo/a/b/', '/a/b/', ''],
  ])('hands %s to the lambda as path %s and query %j', async (requested, expectedPath, expectedSearch) => {
    const seen = seenOf(await fetch(`${base}${requested}`));
    expect(seen.path).toBe(expectedPath);
    expect(seen.search).toBe(expectedSearch);
  });

  it('generates a request id when none is sent, one per request, and gives it to the lambda', async () => {
    const [first, second] = await Promise.all([fetch(`${base}/echo`), fetch(`${base}/echo`)]);
    const ids = [first!, second!].map((response) => response.headers.get('x-request-id'));
    expect(ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ids[1]).not.toBe(ids[0]);
    expect(seenOf(first!).requestId).toBe(ids[0]);
    expect(seenOf(first!).headers['x-request-id']).toBe(ids[0]);
    // With no x-forwarded-for from the client, the runner starts the list with the client.
    expect(seenOf(first!).headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('runner binary bodies', () => {
  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
  // Ascending, descending and permuted (167 is coprime to 256), so no encoding slip (UTF-8,
  // latin1, a stray text decode) survives by luck.
  const permuted = Buffer.from(Array.from({ length: 256 }, (_, index) => (index * 167 + 13) % 256));
  const small = Buffer.concat([everyByte, Buffer.from(everyByte).reverse(), permuted]);
  // Larger than what travels with the response head, so the answer is streamed in parts.
  const large = Buffer.concat([everyByte, randomBytes(1024 * 1024)]);

  it.each([
    ['every byte value', small],
    ['1 MiB beginning with every byte value', large],
  ])('round-trips %s exactly in the request and the response', async (_, sent) => {
    const response = await fetch(`${base}/bytes`, { method: 'POST', body: sent, headers: { 'content-type': 'application/octet-stream' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-received-sha256')).toBe(sha256(sent));
    const received = Buffer.from(await response.arrayBuffer());
    expect(received.length).toBe(sent.length);
    expect(sha256(received)).toBe(sha256(sent));
  });

  it('delivers a binary body the lambda made with every byte value', async () => {
    const response = await fetch(`${base}/bytes?repeat=4`);
    const received = Buffer.from(await response.arrayBuffer());
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(sha256(received)).toBe(sha256(Buffer.concat([everyByte, everyByte, everyByte, everyByte])));
  });
});

describe('runner streaming', () => {
  it('streams a response: the client has the first chunk before the lambda produces the last', async () => {
    const id = randomUUID();
    const events: string[] = [];
    const { response, text } = await new Promise<{ response: http.IncomingMessage; text: string }>((resolve, reject) => {
      const request = http.get(`${base}/stream?id=${id}`, { agent: false }, (response) => {
        let text = '';
        let releaseSent = false;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
          events.push(`chunk ${JSON.stringify(chunk)}`);
          if (!releaseSent && text.includes('first\n')) {
            releaseSent = true;
            events.push('release sent');
            fetch(`${base}/stream/release?id=${id}`).then((answer) => answer.text()).then((answer) => events.push(`release answered: ${answer}`), reject);
          }
        });
        response.on('end', () => resolve({ response, text }));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
    // The lambda produced its last chunk only once the client, holding the first, released it.
    expect(text).toBe('first\nsecond\nlast: released\n');
    expect(events.indexOf('release sent')).toBeGreaterThan(-1);
    expect(events.indexOf('release sent')).toBeLessThan(events.findIndex((event) => event.includes('last:')));
    expect(events).toContain('release answered: released');
    expect(response.headers['transfer-encoding']).toBe('chunked');
    expect(response.headers['content-length']).toBeUndefined();
  });

  it('streams a 10 MB upload to the lambda as it arrives', async () => {
    const mib = 1024 * 1024;
    const upload = randomBytes(10 * mib);
    const lines: string[] = [];
    let responseText = '';
    let responseStatus: number | undefined;
    const request = http.request(`${base}/upload`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': String(upload.length) },
    });
    const ended = new Promise<void>((resolve, reject) => {
      request.on('error', reject);
      request.on('response', (response) => {
        responseStatus = response.statusCode;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          responseText += chunk;
          lines.push(...chunk.split('\n').filter(Boolean));
        });
        response.on('end', resolve);
        response.on('error', reject);
      });
    });
    const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => request.write(chunk, (error) => (error ? reject(error) : resolve())));
    try {
      // Half the upload, then wait: a runner that gathered the body before calling the lambda
      // would never let the lambda report anything now.
      for (let offset = 0; offset < 5 * mib; offset += mib) await write(upload.subarray(offset, offset + mib));
      const firstReport = await waitUntil('the lambda to report part of an upload that is half sent', () => lines.find((line) => line.startsWith('received ')), { intervalMs: 20, timeoutMs: 10_000 });
      expect(Number(firstReport.split(' ')[1])).toBeLessThanOrEqual(5 * mib);
      for (let offset = 5 * mib; offset < upload.length; offset += mib) await write(upload.subarray(offset, offset + mib));
      request.end();
      await ended;
    } finally {
      request.destroy();
    }
    expect(responseStatus).toBe(200);
    expect(responseText.trimEnd().split('\n').at(-1)).toBe(`done ${upload.length} ${sha256(upload)}`);
  });
});

describe('runner response heads', () => {
  it.each([
    [200, undefined],
    [201, '/status/items/1'],
    [301, '/status/200'],
    [400, undefined],
    [404, undefined],
    [418, undefined],
    [500, undefined],
  ])('passes the lambda status %i through with its body and headers', async (status, location) => {
    const response = await fetch(`${base}/status/${status}`, { redirect: 'manual' });
    expect(response.status).toBe(status);
    expect(response.headers.get('x-from-lambda')).toBe('yes');
    expect(response.headers.get('content-type')).toBe('text/plain');
    expect(response.headers.get('location') ?? undefined).toBe(location);
    expect(await response.text()).toBe(`lambda answered ${status}`);
  });

  it("tells the lambda's 404 apart from the runner's own", async () => {
    const fromLambda = await fetch(`${base}/status/404`);
    expect(fromLambda.headers.get('content-type')).toBe('text/plain');
    expect(await fromLambda.text()).toBe('lambda answered 404');
    const fromRunner = await fetch(`${base}/statuses/404`);
    expect(fromRunner.status).toBe(404);
    expect(fromRunner.headers.get('content-type')).toBe('application/json');
    expect(await fromRunner.json()).toMatchObject({ error: 'NoRoute', message: 'no lambda serves /statuses/404' });
  });

  it('gives a body that is complete at once its length', async () => {
    const response = await rawRequest(`${base}/status/200`);
    expect(rawHeaderValues(response.rawHeaders, 'content-length')).toEqual([String(Buffer.byteLength('lambda answered 200'))]);
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(response.body.toString()).toBe('lambda answered 200');
  });

  it('answers HEAD with the head only', async () => {
    const response = await rawRequest(`${base}/echo/head`, 'HEAD');
    expect(response.status).toBe(200);
    expect(response.headers['x-seen']).toBeDefined();
    expect(response.body.length).toBe(0);
  });

  it.each([204, 304])('sends a %i without a body or a length the lambda did not give', async (status) => {
    const response = await rawRequest(`${base}/status/${status}`);
    expect(response.status).toBe(status);
    expect(response.headers['x-from-lambda']).toBe('yes');
    expect(response.headers['content-length']).toBeUndefined();
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(response.body.length).toBe(0);
  });

  it.each(['/headers/sized-whole', '/headers/sized-stream'])('keeps the content-length the lambda set (%s)', async (page) => {
    const response = await rawRequest(`${base}${page}`);
    expect(response.status).toBe(200);
    expect(rawHeaderValues(response.rawHeaders, 'content-length')).toEqual(['11']);
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(response.body.toString()).toBe('hello world');
  });

  it('sends repeated set-cookie headers as separate headers', async () => {
    const response = await rawRequest(`${base}/headers/cookies`);
    expect(rawHeaderValues(response.rawHeaders, 'set-cookie')).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
    // Other repeated headers pass through the lambda's fetch Headers, which joins them as one list.
    expect(rawHeaderValues(response.rawHeaders, 'x-multi-out').join(', ')).toBe('one, two');
  });
});

describe('runner with a { fetch } app', () => {
  it('routes inside the app with its env and this', async () => {
    const response = await fetch(`${base}/app/greet/w%C3%B6rld`, { headers: { 'x-request-id': 'app-greet' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ message: 'hello, wörld', requestId: 'app-greet' });
    const unknown = await fetch(`${base}/app/nowhere`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('the app has no GET /nowhere');
  });

  it('answers before ctx.waitUntil work is done, and the work then finishes', async () => {
    const started = await fetch(`${base}/app/jobs/j1`, { method: 'POST' });
    expect(started.status).toBe(202);
    // The answer came while the job still waits for its release.
    expect(await (await fetch(`${base}/app/jobs`)).json()).toEqual({ waiting: ['j1'], finished: [] });
    expect(await (await fetch(`${base}/app/jobs/j1/release`, { method: 'POST' })).text()).toBe('released j1');
    await waitUntil('the released job to finish', async () => ((await (await fetch(`${base}/app/jobs`)).json()) as { finished: string[] }).finished.includes('j1'), { intervalMs: 20, timeoutMs: 5_000 });
  });

  it('lets ctx.waitUntil work finish when the worker is retired right after the answer', async () => {
    // Long enough that publishing and serving a new generation surely fits in it; shorter than
    // the 10 s a retired worker gets to finish (the lambda's timeout).
    const jobMs = 6000;
    const answered = Date.now();
    expect((await fetch(`${base}/app/jobs/late?ms=${jobMs}`, { method: 'POST' })).status).toBe(202);
    // A new generation (same asset, new env) replaces the worker that runs the job.
    await deploy('app', '/app', appLambda, { generation: 2, env: [{ name: 'GREETING', value: 'hello' }, { name: 'VERSION', value: '2' }] });
    await waitUntil('the new generation', async () => (await (await fetch(`${base}/app/version`)).text()) === '2', { intervalMs: 20, timeoutMs: 10_000 });
    // The premise: the old worker was told to stop while the job still had time to run.
    expect(Date.now() - answered).toBeLessThan(jobMs);
    const finishedLine = /"message":"job late finished"/;
    await waitUntil('the job to log that it finished', async () => finishedLine.test(await readFile(runner.process.logFile, 'utf8')), { intervalMs: 50, timeoutMs: 20_000 });
  });
});

describe('runner route changes and concurrency', () => {
  it('serves a new version at once while a request on the old one finishes', async () => {
    expect(await (await fetch(`${base}/swap?warm`)).text()).toBe('v1 warm');
    let oldDone = false;
    const onOld = fetch(`${base}/swap`).then(async (response) => {
      const result = { status: response.status, text: await response.text() };
      oldDone = true;
      return result;
    });
    await waitForInFlight(1);
    await deploy('swap', '/swap', swapV2, { generation: 2 });
    const newWhileOldInFlight = await waitUntil('v2 to answer', async () => {
      const text = await (await fetch(`${base}/swap?warm`)).text();
      return text === 'v2' && { oldDone };
    }, { intervalMs: 20, timeoutMs: 10_000 });
    // v1 holds its request for 2.5 s; v2 must have answered before that request finished.
    expect(newWhileOldInFlight).toEqual({ oldDone: false });
    expect(await onOld).toEqual({ status: 200, text: 'v1' });
    expect(await (await fetch(`${base}/swap`)).text()).toBe('v2');
  });

  it('serves spec.concurrency requests at once in one worker, lets as many more wait, and refuses beyond that', async () => {
    const warm = await fetch(`${base}/busy`);
    expect(warm.status).toBe(200);
    let heldDone = 0;
    const held = [1, 2].map(() =>
      fetch(`${base}/busy?hold=3000`).then(async (response) => {
        const result = { status: response.status, pid: await response.text() };
        heldDone++;
        return result;
      }),
    );
    await waitForInFlight(2);
    const waitingSince = performance.now();
    const waiting = [1, 2].map(() =>
      fetch(`${base}/busy`).then(async (response) => ({ status: response.status, pid: await response.text(), waitedMs: performance.now() - waitingSince })),
    );
    // The gauge counts waiting requests too: the autoscaler sees the demand.
    await waitForInFlight(4);
    const refused = await fetch(`${base}/busy`);
    // Refused at once, while the held requests are still in flight and two more wait.
    expect(heldDone).toBe(0);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toBe('application/json');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: 'Overloaded', message: expect.stringContaining('2 requests in flight and 2 waiting'), requestId: refused.headers.get('x-request-id') });
    const [first, second] = await Promise.all(held);
    expect(first).toEqual({ status: 200, pid: expect.stringMatching(/^\d+$/) });
    expect(second).toEqual(first);
    // The waiting ones got in as the held ones left, in the same worker.
    for (const answer of await Promise.all(waiting)) {
      expect(answer).toEqual({ status: 200, pid: first!.pid, waitedMs: expect.any(Number) });
      // Their own handling takes no time; what they took was the wait for the 3 s held ones.
      expect(answer.waitedMs).toBeGreaterThan(1_000);
    }
  });
});
