// A lambda that reaches the platform's Redis over the network gets nothing from it: the runner
// runs as a local process (no kubelet here) against real Redis and S3 servers, and the lambda,
// in its worker, opens a plain TCP connection to the Redis port.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ROUTES_KEY } from '@kublambda/route-table';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

let runner: RunnerUnderTest;

// Speaks RESP by hand, as hostile code would: no client library, no credentials.
const redisProbe = `import net from 'node:net';
export default async (request) => {
  const commands = await request.json();
  const received = await new Promise((resolve, reject) => {
    const socket = net.connect(Number(process.env.REDIS_PORT), '127.0.0.1');
    let text = '';
    socket.on('connect', () => socket.write(commands.map((command) => command + '\\r\\n').join('')));
    socket.on('data', (chunk) => {
      text += chunk;
      if (text.split('\\r\\n').length > commands.length) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  return Response.json({ replies: received.split('\\r\\n').slice(0, commands.length), env: Object.keys(process.env).sort() });
};`;

beforeAll(async () => {
  runner = await startRunnerUnderTest();
  await runner.publish(redisProbe, {
    namespace: 'test', name: 'probe', pathPrefix: '/probe', timeoutSeconds: 10,
    env: [{ name: 'REDIS_PORT', value: String(runner.redis.port) }],
  });
});
afterAll(() => runner?.stop());

describe('a lambda reaching the platform Redis', () => {
  it('gets only NOAUTH errors, and changes nothing', async () => {
    const routesBefore = await runner.client.hgetall(ROUTES_KEY);
    const commands = ['PING', `HGETALL ${ROUTES_KEY}`, 'KEYS *', `HSET ${ROUTES_KEY} test/probe hijacked`, 'AUTH default x'];
    const response = await fetch(`${runner.base}/probe`, { method: 'POST', body: JSON.stringify(commands) });
    const body = await response.text();
    expect({ status: response.status, body: response.status === 200 ? '' : body }).toEqual({ status: 200, body: '' });
    const { replies, env } = JSON.parse(body) as { replies: string[]; env: string[] };
    expect(replies).toEqual([
      ...Array(4).fill('-NOAUTH Authentication required.'),
      '-WRONGPASS invalid username-password pair or user is disabled.',
    ]);
    // Nor does it hold the runner's credentials to try instead.
    expect(env).toEqual(['REDIS_PORT']);
    expect(await runner.client.hgetall(ROUTES_KEY)).toEqual(routesBefore);
    expect(Object.keys(routesBefore)).toEqual(['test/probe']);
  });
});
