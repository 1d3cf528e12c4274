// Secret values in route records across a rotation of the encryption key, end to end:
// api-controller, builder and two runners as local processes against the real API server,
// Redis and S3. Requests go straight to the runners (no ingress controller runs here).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { kubectl, waitUntil, type ManagedProcess } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, ROUTE_CHANGES_CHANNEL, type EncryptedEnvValue, type RouteRecord } from '@kublambda/route-table';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

let platform: LambdaPlatform;
let controller: ManagedProcess;
/** Holds only the platform's first key, as a runner not yet given the new one would. */
let oldRunner: string;
/** Holds the new key and the old one. */
let rotatedRunner: string;
let rotatedKeys: string;
const announcements: string[] = [];
let subscriber: Redis;

beforeAll(async () => {
  platform = await startLambdaPlatform('env-crypt');
  rotatedKeys = `${generateEnvEncryptionKey('new')},${platform.envEncryptionKeys}`;
  await platform.startBuilder();
  controller = await platform.startController();
  oldRunner = await platform.startRunner();
  rotatedRunner = await platform.startRunner(undefined, { ENV_ENCRYPTION_KEYS: rotatedKeys });
  subscriber = new Redis(platform.redis.adminUrl);
  subscriber.on('message', (_channel: string, message: string) => announcements.push((JSON.parse(message) as { key: string }).key));
  await subscriber.subscribe(ROUTE_CHANGES_CHANNEL);
}, 90_000);
afterAll(async () => {
  subscriber?.disconnect();
  await platform?.stop();
});

const call = async (runner: string, path: string) => {
  const response = await fetch(`${runner}${path}`);
  return { status: response.status, body: await response.text() };
};
const answers = (runner: string, path: string, body: string) =>
  waitUntil(`${runner}${path} to answer ${body}`, async () => {
    const response = await call(runner, path);
    return response.status === 200 && response.body === body;
  }, { describe: async () => JSON.stringify(await call(runner, path)) });

async function rawRoute(name: string): Promise<string | undefined> {
  return (await platform.rawRoutes())[`${platform.namespace}/${name}`];
}

function encryptedToken(json: string | undefined): EncryptedEnvValue | undefined {
  const entry = json ? (JSON.parse(json) as RouteRecord).env.find((e) => e.name === 'TOKEN') : undefined;
  return entry && 'encrypted' in entry ? entry.encrypted : undefined;
}

const source = { inline: 'export default async () => Response.json({ token: process.env.TOKEN, mode: process.env.MODE })' };
const env = [
  { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'vault', key: 'token' } } },
  { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'mode', key: 'mode' } } },
];
const serving = (mode: string) => JSON.stringify({ token: 'hunter2-secret', mode });

beforeAll(async () => {
  expect((await kubectl(['create', 'secret', 'generic', 'vault', '-n', platform.namespace, '--from-literal=token=hunter2-secret'])).exitCode).toBe(0);
  expect((await kubectl(['create', 'configmap', 'mode', '-n', platform.namespace, '--from-literal=mode=one'])).exitCode).toBe(0);
  await platform.apply('vaulted', { source, env, triggers: { http: { path: '/vaulted' } } });
  await platform.waitFor('vaulted', 'Ready', isReady);
  await answers(oldRunner, '/vaulted', serving('one'));
}, 90_000);

/** Waits until the runner serves the Secret's value, whatever the ConfigMap's is by then. */
const servesToken = (runner: string) =>
  waitUntil(`${runner}/vaulted to serve the token`, async () => {
    const { status, body } = await call(runner, '/vaulted');
    return status === 200 && (JSON.parse(body) as { token: string }).token === 'hunter2-secret';
  }, { describe: async () => JSON.stringify(await call(runner, '/vaulted')) });

describe('Secret values across a key rotation', () => {
  it('keeps the ciphertext when the record is published again for another change', async () => {
    const first = await rawRoute('vaulted');
    expect(first).not.toContain('hunter2-secret');
    expect(encryptedToken(first)?.keyId).toBe('test');

    // ConfigMaps are not watched: the periodic pass (every second here) picks the change up.
    // The passes before and after it find nothing changed and publish nothing.
    const announced = announcements.length;
    expect((await kubectl(['patch', 'configmap', 'mode', '-n', platform.namespace, '--type=merge', '-p', '{"data":{"mode":"two"}}'])).exitCode).toBe(0);
    await answers(oldRunner, '/vaulted', serving('two'));
    expect(encryptedToken(await rawRoute('vaulted'))).toEqual(encryptedToken(first));
    await waitUntil('the change to be announced', async () => announcements.length > announced);
    expect(announcements.slice(announced)).toEqual([`${platform.namespace}/vaulted`]);
  }, 90_000);

  it('serves values written with the old key from a runner holding both, and re-encrypts with the new key', async () => {
    expect(encryptedToken(await rawRoute('vaulted'))?.keyId).toBe('test');
    await servesToken(rotatedRunner);

    // api-controller restarted with the new key first: it encrypts with it from now on.
    await controller.stop();
    controller = await platform.startController(undefined, { ENV_ENCRYPTION_KEYS: rotatedKeys });
    await waitUntil('the record to be encrypted with the new key', async () => encryptedToken(await rawRoute('vaulted'))?.keyId === 'new', {
      describe: async () => (await rawRoute('vaulted')) ?? 'no record',
    });
    expect(await rawRoute('vaulted')).not.toContain('hunter2-secret');
    await servesToken(rotatedRunner);

    // A runner that was not given the new key says so, rather than run the lambda without it.
    await waitUntil('the runner without the new key to refuse the lambda', async () => {
      const { status, body } = await call(oldRunner, '/vaulted');
      const answer = JSON.parse(body) as { error?: string; message?: string };
      return status === 502 && answer.error === 'LoadFailed' && answer.message?.startsWith(`env TOKEN of lambda ${platform.namespace}/vaulted is encrypted with key "new"`) === true;
    }, { describe: async () => JSON.stringify(await call(oldRunner, '/vaulted')) });
  }, 90_000);
});
