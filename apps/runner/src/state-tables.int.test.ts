// State tables through the runner: the runner runs as a local process (no kubelet here) against
// real Redis (append-only file on) and S3 servers; lambdas call context.state over their
// worker's channel and the runner performs the operations in Redis.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { waitUntil } from '@kublambda/dev-servers';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

let runner: RunnerUnderTest;
let base: string;

// Runs the state calls in the request body against context.state, in parallel, and answers
// with each call's result or error.
const stateLambda = `export default async (request, context) => {
  const calls = await request.json();
  const outcomes = await Promise.all(calls.map(async ({ table, op, args }) => {
    try {
      return { result: await context.state.table(table)[op](...args) };
    } catch (error) {
      return { error: { name: error.name, code: error.code, message: error.message } };
    }
  }));
  return Response.json(outcomes);
};`;

interface Call {
  table: string;
  op: 'get' | 'put' | 'delete' | 'increment' | 'list';
  args: unknown[];
}

interface Outcome {
  result?: any;
  error?: { name: string; code: string; message: string };
}

async function deploy(namespace: string, name: string, stateTables: string[], source = stateLambda): Promise<void> {
  await runner.publish(source, { namespace, name, pathPrefix: `/${namespace}/${name}`, timeoutSeconds: 10, concurrency: 200, stateTables });
}

async function callState(lambda: string, calls: Call[]): Promise<Outcome[]> {
  const response = await fetch(`${base}/${lambda}`, { method: 'POST', body: JSON.stringify(calls) });
  expect(response.status).toBe(200);
  return (await response.json()) as Outcome[];
}

async function one(lambda: string, call: Call): Promise<Outcome> {
  return (await callState(lambda, [call]))[0]!;
}

beforeAll(async () => {
  runner = await startRunnerUnderTest({ redis: { appendOnly: true } });
  base = runner.base;
  await deploy('team-a', 'shop', ['orders', 'counters']);
  await deploy('team-a', 'audit', ['orders']);
  await deploy('team-b', 'shop', ['orders']);
  await deploy('team-a', 'plain', [], 'export default async () => new Response("no state needed")');
});
afterAll(() => runner?.stop());

describe('state tables through the runner', () => {
  it('round-trips every operation', async () => {
    const [put, firstIncrement, secondIncrement, missing] = await callState('team-a/shop', [
      { table: 'orders', op: 'put', args: ['order-1', { item: 'tea', quantity: 2 }] },
      { table: 'counters', op: 'increment', args: ['visits', 5] },
      { table: 'counters', op: 'increment', args: ['visits'] },
      { table: 'counters', op: 'get', args: ['missing'] },
    ]);
    expect(put!.result).toEqual({ version: expect.any(Number) });
    // The two increments ran in parallel: whichever came second saw both.
    expect([firstIncrement!.result, secondIncrement!.result]).toContain(6);
    expect(missing!.result).toBeNull();

    const entry = await one('team-a/shop', { table: 'orders', op: 'get', args: ['order-1'] });
    expect(entry.result).toEqual({ key: 'order-1', value: { item: 'tea', quantity: 2 }, version: put!.result.version });

    const stale = await one('team-a/shop', { table: 'orders', op: 'put', args: ['order-1', 'changed', { ifVersion: put!.result.version + 100 }] });
    expect(stale.error).toMatchObject({ name: 'StateError', code: 'StateConflict' });
    const current = await one('team-a/shop', { table: 'orders', op: 'put', args: ['order-1', 'changed', { ifVersion: put!.result.version }] });
    expect(current.result.version).toBeGreaterThan(put!.result.version);

    expect((await one('team-a/shop', { table: 'orders', op: 'delete', args: ['order-1'] })).result).toBe(true);
    expect((await one('team-a/shop', { table: 'orders', op: 'get', args: ['order-1'] })).result).toBeNull();
    expect((await one('team-a/shop', { table: 'orders', op: 'delete', args: ['order-1'] })).result).toBe(false);
  });

  it('lists a table page by page', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
    await callState('team-a/shop', keys.map((key) => ({ table: 'counters', op: 'put', args: [key, key.length] })));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = (await one('team-a/shop', { table: 'counters', op: 'list', args: [{ prefix: 'page-', limit: 10, cursor }] })).result;
      seen.push(...page.entries.map((entry: { key: string }) => entry.key));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(keys);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('expires entries after their TTL', async () => {
    await one('team-a/shop', { table: 'counters', op: 'put', args: ['short-lived', 'soon gone', { ttlSeconds: 1 }] });
    const entry = (await one('team-a/shop', { table: 'counters', op: 'get', args: ['short-lived'] })).result;
    expect(entry.expiresAt).toBeGreaterThan(Date.now() - 1000);
    await waitUntil('the entry to expire', async () => (await one('team-a/shop', { table: 'counters', op: 'get', args: ['short-lived'] })).result === null, {
      intervalMs: 200,
      timeoutMs: 10_000,
    });
  });

  it('refuses a value over the size limit with a clear error', async () => {
    const outcome = await one('team-a/shop', { table: 'orders', op: 'put', args: ['huge', 'x'.repeat(300 * 1024)] });
    expect(outcome.error).toMatchObject({ code: 'ValueTooLarge' });
    expect(outcome.error!.message).toMatch(/262144|256 KiB/);
  });

  it('counts 1,000 concurrent increments from 50 parallel requests exactly', async () => {
    const increments: Call[] = Array.from({ length: 20 }, () => ({ table: 'counters', op: 'increment', args: ['hits'] }));
    const answers = await Promise.all(Array.from({ length: 50 }, () => callState('team-a/shop', increments)));
    const results = answers.flat().map((outcome) => outcome.result as number);
    expect(results).toHaveLength(1000);
    // Every increment saw a different count: none was lost or applied twice.
    expect(new Set(results).size).toBe(1000);
    expect((await one('team-a/shop', { table: 'counters', op: 'get', args: ['hits'] })).result.value).toBe(1000);
  });

  it('lets exactly one of 100 concurrent compare-and-set writers win each round', async () => {
    let version = (await one('team-a/shop', { table: 'orders', op: 'put', args: ['contended', 'round 0'] })).result.version as number;
    for (let round = 1; round <= 3; round++) {
      const writers = Array.from({ length: 100 }, (_, writer) =>
        one('team-a/shop', { table: 'orders', op: 'put', args: ['contended', `round ${round} writer ${writer}`, { ifVersion: version }] }),
      );
      const outcomes = await Promise.all(writers);
      const winners = outcomes.filter((outcome) => outcome.result);
      expect(winners).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome.error?.code === 'StateConflict')).toHaveLength(99);
      version = winners[0]!.result.version;
      const entry = (await one('team-a/shop', { table: 'orders', op: 'get', args: ['contended'] })).result;
      expect(entry.version).toBe(version);
      expect(entry.value).toMatch(new RegExp(`^round ${round} writer \\d+$`));
    }
  });

  it('refuses state operations beyond what one worker may have in flight, and serves the rest', async () => {
    // The worker warm first, then Redis holds every command for a second (less than the
    // command timeout): the lambda's operations pile up in flight however fast the machine is.
    await one('team-a/shop', { table: 'counters', op: 'get', args: ['warm-up'] });
    const admin = new Redis(runner.redis.adminUrl, { maxRetriesPerRequest: 1 });
    let outcomes: Outcome[];
    try {
      await admin.call('CLIENT', 'PAUSE', '1000', 'ALL');
      outcomes = await callState('team-a/shop', Array.from({ length: 3000 }, (_, i) => ({ table: 'counters', op: 'get', args: [`flood-${i}`] })));
    } finally {
      admin.disconnect();
    }
    const refused = outcomes.filter((outcome) => outcome.error);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((outcome) => outcome.error!.code === 'StateUnavailable' && outcome.error!.message.includes('state operations in flight'))).toBe(true);
    expect(outcomes.filter((outcome) => outcome.result === null).length).toBeGreaterThanOrEqual(1024);
    // The worker and the store are fine afterwards.
    expect((await one('team-a/shop', { table: 'counters', op: 'increment', args: ['after-flood'] })).result).toBe(1);
  });

  it('refuses a table the lambda did not declare, naming the ones it did', async () => {
    const outcome = await one('team-a/audit', { table: 'counters', op: 'get', args: ['hits'] });
    expect(outcome.error).toMatchObject({ name: 'StateError', code: 'TableNotDeclared' });
    expect(outcome.error!.message).toContain('"counters"');
    expect(outcome.error!.message).toContain('"orders"');
  });

  it('shares a table within a namespace and keeps namespaces apart', async () => {
    await one('team-a/shop', { table: 'orders', op: 'put', args: ['shared-key', 'from team-a/shop'] });
    expect((await one('team-a/audit', { table: 'orders', op: 'get', args: ['shared-key'] })).result.value).toBe('from team-a/shop');
    expect((await one('team-b/shop', { table: 'orders', op: 'get', args: ['shared-key'] })).result).toBeNull();
    await one('team-b/shop', { table: 'orders', op: 'put', args: ['shared-key', 'from team-b/shop'] });
    expect((await one('team-a/shop', { table: 'orders', op: 'get', args: ['shared-key'] })).result.value).toBe('from team-a/shop');
  });

  it('keeps the data across a Redis restart', async () => {
    await one('team-a/shop', { table: 'orders', op: 'put', args: ['durable', { kept: true }] });
    await runner.redis.restart();
    const entry = await waitUntil('the state store to answer again', async () => (await one('team-a/shop', { table: 'orders', op: 'get', args: ['durable'] })).result, {
      intervalMs: 200,
      timeoutMs: 15_000,
    });
    expect(entry.value).toEqual({ kept: true });
  });

  it('gives the handler a clear error while Redis is down, stays healthy, and recovers', async () => {
    await one('team-a/shop', { table: 'counters', op: 'put', args: ['before-outage', 1] });
    await runner.client.call('SHUTDOWN').catch(() => undefined);
    const during = await one('team-a/shop', { table: 'counters', op: 'get', args: ['before-outage'] });
    expect(during.error).toMatchObject({ name: 'StateError', code: 'StateUnavailable' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/team-a/plain`)).text()).toBe('no state needed');

    await runner.redis.restart();
    const entry = await waitUntil('the state store to answer again', async () => (await one('team-a/shop', { table: 'counters', op: 'get', args: ['before-outage'] })).result, {
      intervalMs: 200,
      timeoutMs: 15_000,
    });
    expect(entry.value).toBe(1);
  });
});
