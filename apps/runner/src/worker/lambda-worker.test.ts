import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { LambdaWorker, LambdaWorkerError, type LambdaWorkerOptions, type WorkerLimits, type WorkerLogLine, type WorkerRequest } from './lambda-worker.ts';

let assetsDir: string;
const workers: LambdaWorker[] = [];

beforeAll(async () => {
  assetsDir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-worker-test-'));
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
});
afterAll(() => rm(assetsDir, { recursive: true, force: true }));

interface LambdaOptions {
  limits?: Partial<WorkerLimits>;
  env?: Record<string, string>;
  onLog?: LambdaWorkerOptions['onLog'];
}

async function writeAsset(source: string): Promise<string> {
  const assetPath = path.join(assetsDir, `${randomUUID()}.mjs`);
  await writeFile(assetPath, source);
  return assetPath;
}

async function startLambda(source: string, options: LambdaOptions = {}): Promise<LambdaWorker> {
  const worker = await LambdaWorker.start({
    assetPath: await writeAsset(source),
    limits: { memoryMiB: 128, timeoutSeconds: 5, concurrency: 10, ...options.limits },
    env: options.env ?? {},
    lambda: { namespace: 'tests', name: 'fixture' },
    onLog: options.onLog,
  });
  workers.push(worker);
  return worker;
}

function request(overrides: Partial<WorkerRequest> = {}): WorkerRequest {
  return {
    requestId: randomUUID(),
    method: 'GET',
    url: 'http://lambda.test/',
    headers: [],
    body: null,
    clientAddress: '203.0.113.7',
    ...overrides,
  };
}

async function* chunksOf(bytes: Uint8Array, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
}

async function bytesOf(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function call(worker: LambdaWorker, overrides: Partial<WorkerRequest> = {}) {
  const response = await worker.invoke(request(overrides));
  const body = await bytesOf(response.body);
  return { ...response, body, text: body.toString(), json: () => JSON.parse(body.toString()) as unknown };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await delay(10)) {
    if (Date.now() > deadline) throw new Error('the condition never held');
  }
}

async function failureOf(promise: Promise<unknown>): Promise<LambdaWorkerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LambdaWorkerError) return error;
    throw error;
  }
  throw new Error('expected a LambdaWorkerError, the call succeeded');
}

const ECHO = `
export default async (request, context) => {
  const url = new URL(request.url);
  return new Response(await request.arrayBuffer(), {
    status: 201,
    headers: [
      ['x-method', request.method],
      ['x-url', request.url],
      ['x-repeated', request.headers.get('x-repeated')],
      ['x-query', url.searchParams.getAll('q').join('|')],
      ['x-client', context.clientAddress],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ],
  });
};`;

/** Reports what a lambda's attempts outside its sandbox end with: 'allowed' or the error code. */
const PROBE = `
import fs from 'node:fs';
import childProcess from 'node:child_process';
const outcomeOf = (attempt) => { try { attempt(); return 'allowed'; } catch (error) { return error.code; } };
const attempts = {
  '/write': (target) => fs.writeFileSync(target, 'escaped'),
  '/read': (target) => fs.readFileSync(target),
  '/spawn': () => childProcess.spawnSync('true'),
};
export default (request) => {
  const url = new URL(request.url);
  return Response.json(outcomeOf(() => attempts[url.pathname](url.searchParams.get('target'))));
};`;

describe('LambdaWorker', () => {
  it('round-trips method, url, query, repeated headers, the client address and a 1 MiB binary body', async () => {
    const worker = await startLambda(ECHO);
    const payload = randomBytes(1024 * 1024);
    const response = await call(worker, {
      method: 'PUT',
      url: 'http://lambda.test/items/7?q=a&q=b',
      headers: [
        ['x-repeated', 'one'],
        ['x-repeated', 'two'],
        ['content-type', 'application/octet-stream'],
      ],
      body: chunksOf(payload),
    });
    expect(response.status).toBe(201);
    expect(response.headers).toEqual(
      expect.arrayContaining([
        ['x-method', 'PUT'],
        ['x-url', 'http://lambda.test/items/7?q=a&q=b'],
        ['x-repeated', 'one, two'],
        ['x-query', 'a|b'],
        ['x-client', '203.0.113.7'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
      ]),
    );
    expect(response.body.equals(payload)).toBe(true);
  });

  it('pulls the request body only as fast as the handler reads it', async () => {
    const worker = await startLambda(`
      export default async (request) => {
        const reader = request.body.getReader();
        await reader.read();
        return new Response('read one chunk');
      };`);
    let chunksPulled = 0;
    async function* manyChunks() {
      for (; chunksPulled < 1000; chunksPulled++) yield new Uint8Array(1024);
    }
    const response = await call(worker, { method: 'POST', body: manyChunks() });
    expect(response.text).toBe('read one chunk');
    expect(chunksPulled).toBeLessThan(5);
  });

  it("fails the handler's body read when the request body source fails", async () => {
    const worker = await startLambda(ECHO);
    async function* brokenUpload() {
      yield new Uint8Array(16);
      throw new Error('client went away');
    }
    const failure = await failureOf(worker.invoke(request({ method: 'POST', body: brokenUpload() })));
    expect(failure).toMatchObject({ kind: 'HandlerError' });
    expect(failure.message).toContain('client went away');
  });

  it('cancels the request in the worker when the runner stops reading the response', async () => {
    const worker = await startLambda(`
      let cancelled = false;
      const settled = () => new Promise((resolve) => setTimeout(resolve, 20));
      export default async (request) => request.url.endsWith('/was-cancelled')
        ? settled().then(() => Response.json(cancelled))
        : new Response(new ReadableStream({
            pull: (controller) => controller.enqueue(new Uint8Array(1024)),
            cancel: () => { cancelled = true; },
          }));`);
    const endless = await worker.invoke(request());
    for await (const _chunk of endless.body) break;
    expect(worker.inFlight).toBe(0);
    expect((await call(worker, { url: 'http://lambda.test/was-cancelled' })).json()).toBe(true);
  });

  it('calls a { fetch } export as a method, with env and context', async () => {
    const worker = await startLambda(
      `export default {
        greeting: 'hello',
        async fetch(request, env, context) {
          return Response.json({ greeting: this.greeting, name: env.NAME, requestId: context.requestId, lambda: context.lambda });
        },
      };`,
      { env: { NAME: 'world' } },
    );
    const response = await call(worker, { requestId: 'request-1' });
    expect(response.json()).toEqual({ greeting: 'hello', name: 'world', requestId: 'request-1', lambda: { namespace: 'tests', name: 'fixture' } });
  });

  it("gives the handler the lambda's env and none of the runner's", async () => {
    process.env.RUNNER_SECRET = 'runner-only';
    try {
      const worker = await startLambda(
        'export default (request, context) => Response.json({ processEnv: process.env, contextEnv: context.env });',
        { env: { LAMBDA_SETTING: 'on', NODE_OPTIONS: '--allow-child-process' } },
      );
      const { processEnv, contextEnv } = (await call(worker)).json() as Record<string, Record<string, string>>;
      expect(processEnv).toEqual({ LAMBDA_SETTING: 'on' });
      expect(contextEnv).toEqual({ LAMBDA_SETTING: 'on' });
      expect(processEnv?.RUNNER_SECRET).toBeUndefined();
    } finally {
      delete process.env.RUNNER_SECRET;
    }
  });

  it('streams the response: the first chunk arrives before the handler produces the last', async () => {
    const worker = await startLambda(`
      export default () => new Response(new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('first'));
          await new Promise((resolve) => setTimeout(resolve, 300));
          controller.enqueue(new TextEncoder().encode(String(Date.now())));
          controller.close();
        },
      }));`);
    const response = await worker.invoke(request());
    const arrivals: Array<{ text: string; at: number }> = [];
    for await (const chunk of response.body) arrivals.push({ text: Buffer.from(chunk).toString(), at: Date.now() });
    expect(arrivals.map(({ text }) => text)[0]).toBe('first');
    const lastProducedAt = Number(arrivals[1]?.text);
    expect(arrivals[0]!.at).toBeLessThan(lastProducedAt);
  });

  it('cancels a response whose body stalls for the timeout, but not one that keeps sending', async () => {
    const worker = await startLambda(`
      export default (request) => {
        const encoder = new TextEncoder();
        const stalls = request.url.endsWith('/stall');
        let sent = 0;
        return new Response(new ReadableStream({
          async pull(controller) {
            if (stalls && sent === 1) return new Promise(() => {});
            // 6 chunks 0.5 s apart: longer in all than the 2 s timeout, never idle for it.
            if (sent === 6) return controller.close();
            if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 500));
            controller.enqueue(encoder.encode(String(sent++)));
          },
        }));
      };`,
      { limits: { timeoutSeconds: 2 } },
    );
    expect((await call(worker)).text).toBe('012345');

    const stalled = await worker.invoke(request({ url: 'http://lambda.test/stall' }));
    const received: string[] = [];
    const failure = await failureOf(
      (async () => {
        for await (const chunk of stalled.body) received.push(Buffer.from(chunk).toString());
      })(),
    );
    expect(received).toEqual(['0']);
    expect(failure).toMatchObject({ kind: 'Timeout', status: 504 });
    expect(failure.message).toContain('sent nothing for 2 s');
    expect(worker.inFlight).toBe(0);
    expect((await call(worker)).text).toBe('012345');
  }, 20_000);

  it('passes a 20 MiB body chunk through in pieces', async () => {
    const worker = await startLambda(`
      export default () => {
        const bytes = new Uint8Array(20 * 1024 * 1024);
        for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i / 4096) % 251;
        return new Response(bytes);
      };`);
    const response = await call(worker);
    expect(response.body.byteLength).toBe(20 * 1024 * 1024);
    expect(response.body[4096 * 300]).toBe(300 % 251);
    expect(worker.alive).toBe(true);
  });

  it('kills a worker that announces a message larger than a worker may send', async () => {
    const worker = await startLambda(`
      import { writeSync } from 'node:fs';
      export default () => {
        // A frame header claiming 256 MiB, written past the host onto the runner's channel.
        writeSync(3, Buffer.from([0, 0, 0, 0x10]));
        return new Promise(() => {});
      };`);
    const failure = await failureOf(call(worker));
    expect(failure).toMatchObject({ kind: 'WorkerExited', status: 502 });
    expect(failure.message).toContain('it broke the message protocol: a frame of 268435456 bytes, more than 16777216');
  });

  it.each([
    ['a message that is not JSON', `'{no'`, 'a message that is not JSON'],
    ['a response head with status 1000', `JSON.stringify({ type: 'response-head', id: request.headers.get('x-request-id'), status: 1000, headers: [], end: true })`, 'a response status of 1000'],
  ])('kills a worker that writes %s onto the channel itself', async (_what, jsonExpression, problem) => {
    const worker = await startLambda(`
      import { writeSync } from 'node:fs';
      export default (request) => {
        // A frame written past the host: [u32 frame length][u32 JSON length][JSON].
        const json = Buffer.from(${jsonExpression});
        const frame = Buffer.alloc(8 + json.length);
        frame.writeUInt32LE(4 + json.length, 0);
        frame.writeUInt32LE(json.length, 4);
        json.copy(frame, 8);
        writeSync(3, frame);
        return new Promise(() => {});
      };`);
    const failure = await failureOf(call(worker, { headers: [['x-request-id', 'forged']] }));
    expect(failure).toMatchObject({ kind: 'WorkerExited', status: 502 });
    expect(failure.message).toContain(`it broke the message protocol: ${problem}`);
  });

  it('serves two requests at once that carry the same request id', async () => {
    const worker = await startLambda(`
      export default async (request, context) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return new Response(context.requestId + ' ' + new URL(request.url).pathname);
      };`);
    const answers = await Promise.all([call(worker, { requestId: 'same', url: 'http://lambda.test/a' }), call(worker, { requestId: 'same', url: 'http://lambda.test/b' })]);
    expect(answers.map((answer) => answer.text)).toEqual(['same /a', 'same /b']);
  });

  it('reports a thrown error as HandlerError 502 with its message and keeps serving', async () => {
    const worker = await startLambda(`
      export default (request) => {
        if (request.url.endsWith('/fail')) throw new Error('the handler broke');
        return new Response('fine');
      };`);
    const failure = await failureOf(worker.invoke(request({ url: 'http://lambda.test/fail' })));
    expect(failure).toMatchObject({ kind: 'HandlerError', status: 502 });
    expect(failure.message).toContain('the handler broke');
    expect(failure.message).not.toContain(' at ');
    expect((await call(worker)).text).toBe('fine');
    expect(worker.inFlight).toBe(0);
  });

  it('times out a handler that never answers with Timeout 504 and keeps the worker', async () => {
    const worker = await startLambda(`
      export default (request) => request.url.endsWith('/hang') ? new Promise(() => {}) : new Response('fine');`,
      { limits: { timeoutSeconds: 0.5 } },
    );
    const failure = await failureOf(worker.invoke(request({ url: 'http://lambda.test/hang' })));
    expect(failure).toMatchObject({ kind: 'Timeout', status: 504 });
    // The ping after a timeout is answered: the worker takes requests again and was not killed.
    expect(worker.accepting).toBe(false);
    await until(() => worker.accepting);
    expect(worker.alive).toBe(true);
    expect((await call(worker)).text).toBe('fine');
  });

  it('kills a worker whose event loop is blocked: Timeout for that request; those behind it fail as never begun', async () => {
    const worker = await startLambda(`
      export default (request) => {
        if (request.url.endsWith('/spin')) while (true) {}
        return new Response('never reached while spinning');
      };`,
      { limits: { timeoutSeconds: 2 } },
    );
    const spinning = failureOf(worker.invoke(request({ url: 'http://lambda.test/spin' })));
    const queued = failureOf(worker.invoke(request()));
    expect(await spinning).toMatchObject({ kind: 'Timeout', status: 504, notStarted: false });
    // Its handler never ran: LambdaWorkers hands such a request to another worker.
    expect(await queued).toMatchObject({ kind: 'WorkerExited', status: 502, notStarted: true });
    expect(worker.alive).toBe(false);
    expect(await failureOf(worker.invoke(request()))).toMatchObject({ kind: 'WorkerExited' });
  }, 10_000);

  it('fails in-flight requests with WorkerExited when the handler exits the process', async () => {
    const worker = await startLambda(`
      export default (request) => {
        if (request.url.endsWith('/exit')) process.exit(3);
        return new Promise(() => {});
      };`);
    const waiting = failureOf(worker.invoke(request()));
    const exiting = await failureOf(worker.invoke(request({ url: 'http://lambda.test/exit' })));
    expect(exiting).toMatchObject({ kind: 'WorkerExited', status: 502 });
    expect(exiting.message).toContain('code 3');
    expect(await waiting).toMatchObject({ kind: 'WorkerExited' });
    expect(worker.alive).toBe(false);
    expect(worker.inFlight).toBe(0);
  });

  it('reports WorkerExited when an uncaught exception in a timer kills the worker', async () => {
    const worker = await startLambda(`
      export default () => {
        setTimeout(() => { throw new Error('thrown from a timer'); }, 10);
        return new Promise(() => {});
      };`);
    expect(await failureOf(worker.invoke(request()))).toMatchObject({ kind: 'WorkerExited', status: 502 });
  });

  it('reports MemoryLimit 503 when the handler exhausts the heap limit', async () => {
    const worker = await startLambda(`
      export default () => {
        const hoard = [];
        for (;;) hoard.push(new Array(100_000).fill(Math.random()));
      };`,
      { limits: { memoryMiB: 64 } },
    );
    expect(await failureOf(worker.invoke(request()))).toMatchObject({ kind: 'MemoryLimit', status: 503 });
    expect(worker.alive).toBe(false);
  }, 20_000);

  it('refuses requests beyond the concurrency limit with Overloaded 503', async () => {
    const worker = await startLambda(
      'export default () => new Promise((resolve) => setTimeout(() => resolve(new Response("done")), 300));',
      { limits: { concurrency: 2 } },
    );
    const admitted = [call(worker), call(worker)];
    expect(worker.inFlight).toBe(2);
    expect(await failureOf(worker.invoke(request()))).toMatchObject({ kind: 'Overloaded', status: 503 });
    expect((await Promise.all(admitted)).map(({ text }) => text)).toEqual(['done', 'done']);
    expect((await call(worker)).text).toBe('done');
  });

  describe('sandbox', () => {
    it('lets the lambda write only its private directory', async () => {
      const worker = await startLambda(PROBE);
      const outside = path.join(os.tmpdir(), `escape-${randomUUID()}`);
      expect((await call(worker, { url: `http://lambda.test/write?target=${outside}` })).json()).toBe('ERR_ACCESS_DENIED');
      expect(existsSync(outside)).toBe(false);
      expect((await call(worker, { url: 'http://lambda.test/write?target=scratch.txt' })).json()).toBe('allowed');
    });

    it("refuses reading files outside its directory, another lambda's asset included", async () => {
      const worker = await startLambda(PROBE);
      const otherAsset = await writeAsset('export default () => new Response("secret");');
      for (const target of ['/etc/hostname', otherAsset]) {
        expect((await call(worker, { url: `http://lambda.test/read?target=${target}` })).json()).toBe('ERR_ACCESS_DENIED');
      }
    });

    it('refuses starting processes', async () => {
      const worker = await startLambda(PROBE);
      expect((await call(worker, { url: 'http://lambda.test/spawn' })).json()).toBe('ERR_ACCESS_DENIED');
    });
  });

  it("passes console output to onLog with the request's id, other output without", async () => {
    const lines: WorkerLogLine[] = [];
    const worker = await startLambda(
      `console.log('loaded');
      export default () => {
        console.log('handling', 42);
        console.error('something odd\\non two lines');
        process.stdout.write('raw output\\n');
        return new Response('logged');
      };`,
      { onLog: (line) => lines.push(line) },
    );
    await call(worker, { requestId: 'logging-request' });
    await worker.stop();
    expect(lines).toEqual(
      expect.arrayContaining([
        { stream: 'stdout', text: 'loaded', requestId: undefined },
        { stream: 'stdout', text: 'handling 42', requestId: 'logging-request' },
        { stream: 'stderr', text: 'something odd', requestId: 'logging-request' },
        { stream: 'stderr', text: 'on two lines', requestId: 'logging-request' },
        { stream: 'stdout', text: 'raw output' },
      ]),
    );
  });

  it('passes at most 1,000 lines of output a second and says how many it dropped', async () => {
    const lines: WorkerLogLine[] = [];
    const worker = await startLambda(
      `export default (request) => {
        if (request.url.endsWith('/flood')) for (let i = 0; i < 5000; i++) console.log('line', i);
        else console.log('calm again');
        return new Response('done');
      };`,
      { onLog: (line) => lines.push(line) },
    );
    await call(worker, { url: 'http://lambda.test/flood' });
    // The notice comes with the first line of a later second.
    await delay(1100);
    await call(worker);
    const texts = lines.map((line) => line.text);
    expect(texts.slice(0, 3)).toEqual(['line 0', 'line 1', 'line 2']);
    const passed = texts.filter((text) => text.startsWith('line ')).length;
    const notices = lines.filter((line) => line.text.includes('dropped'));
    for (const notice of notices) expect(notice).toEqual({ stream: 'stderr', text: expect.stringMatching(/^\d+ lines of output dropped: the limit is 1000 a second$/) });
    const dropped = notices.reduce((sum, notice) => sum + Number(notice.text.split(' ')[0]), 0);
    // 1,000 in the flood's second (up to 1,000 more if a slow runner saw it cross into the next).
    expect(passed).toBeGreaterThanOrEqual(1000);
    expect(passed).toBeLessThanOrEqual(2000);
    expect(passed + dropped).toBe(5000);
    expect(texts.at(-1)).toBe('calm again');
  });

  it('fails with LoadFailed, and no process details, when the worker process dies while starting', async () => {
    // A 1 MiB heap cannot even start Node.
    const failure = await failureOf(LambdaWorker.spawn({ memoryMiB: 1 }));
    expect(failure).toMatchObject({ kind: 'LoadFailed', status: 502 });
    expect(failure.message).toMatch(/^a worker process (exited with code \d+|killed by SIG\w+) while starting$/);
    expect(failure.cause).toBeInstanceOf(Error);
  });

  it('fails to start with LoadFailed when the module has no usable default export or throws', async () => {
    for (const [source, reason] of [
      ['export const handler = () => new Response("x");', 'neither a handler function nor an object with a fetch method'],
      ['throw new Error("broken at import");', 'broken at import'],
    ]) {
      const failure = await failureOf(startLambda(source!));
      expect(failure).toMatchObject({ kind: 'LoadFailed', status: 502 });
      expect(failure.message).toContain(reason);
    }
  });

  it('stops gracefully: in-flight requests finish, then the worker is gone', async () => {
    const worker = await startLambda('export default () => new Promise((resolve) => setTimeout(() => resolve(new Response("finished")), 200));');
    const inFlight = call(worker);
    await worker.stop();
    expect((await inFlight).text).toBe('finished');
    expect(worker.alive).toBe(false);
    expect(await failureOf(worker.invoke(request()))).toMatchObject({ kind: 'WorkerExited' });
  });
});
