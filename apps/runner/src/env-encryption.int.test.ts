// Encrypted env values in route records, as api-controller writes them, decrypted by the runner
// (a local process against real Redis and S3 servers) for the lambda's worker only.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { waitUntil } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey, parseEnvKeyRing, type EnvKeyRing, type RouteEnvEntry } from '@kublambda/route-table';
import { startRunnerUnderTest, type RunnerUnderTest } from './runner-process.testing.ts';

const newKey = generateEnvEncryptionKey('new');
const oldKey = generateEnvEncryptionKey('old');
let runner: RunnerUnderTest;

beforeAll(async () => {
  // Rotated: a new key encrypts, the old one still decrypts what was written with it.
  runner = await startRunnerUnderTest({ env: { ENV_ENCRYPTION_KEYS: `${newKey},${oldKey}` } });
  await runner.publish(printEnv, { namespace: 'test', name: 'sealed', pathPrefix: '/sealed', env: envWithToken(parseEnvKeyRing(oldKey), 'sealed') });
});
afterAll(() => runner?.stop());

const printEnv = 'export default async () => Response.json(process.env)';

/** The env of lambda test/<name>, TOKEN encrypted with `keys` for the lambda `encryptedFor`. */
function envWithToken(keys: EnvKeyRing, name: string, encryptedFor = `test/${name}`): RouteEnvEntry[] {
  return [
    { name: 'PLAIN', value: 'p' },
    { name: 'TOKEN', encrypted: keys.encrypt('s3cret', { lambdaKey: encryptedFor, name: 'TOKEN' }) },
  ];
}

async function call(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${runner.base}${path}`);
  return { status: response.status, body: await response.json() };
}

describe('encrypted env values', () => {
  it('decrypts a value written with an older key of the ring, for the worker and no one else', async () => {
    const { status, body } = await call('/sealed');
    expect(status).toBe(200);
    // Exactly the lambda's env: the runner's keys (and its other credentials) never reach a worker.
    expect(body).toEqual({ PLAIN: 'p', TOKEN: 's3cret' });
  });

  it('fails a lambda whose value is under a key the runner does not hold, with a clear error and a log line', async () => {
    await runner.publish(printEnv, { namespace: 'test', name: 'unknown-key', pathPrefix: '/unknown-key', env: envWithToken(parseEnvKeyRing(generateEnvEncryptionKey('retired')), 'unknown-key') });
    const { status, body } = await call('/unknown-key');
    expect(status).toBe(502);
    expect(body).toMatchObject({
      error: 'LoadFailed',
      message: 'env TOKEN of lambda test/unknown-key is encrypted with key "retired", which is not among the keys in ENV_ENCRYPTION_KEYS (new, old); the lambda cannot start without it',
    });
    await waitUntil('the runner to log the failure with the lambda', async () =>
      (await readFile(runner.process.logFile, 'utf8'))
        .split('\n')
        .some((line) => line.includes('"namespace":"test"') && line.includes('"lambda":"unknown-key"') && line.includes('encrypted with key \\"retired\\"')),
    );
    // The others keep serving.
    expect((await call('/sealed')).status).toBe(200);
  });

  it('refuses a value copied from the record of another lambda', async () => {
    await runner.publish(printEnv, { namespace: 'test', name: 'copied', pathPrefix: '/copied', env: envWithToken(runner.envKeys, 'copied', 'test/sealed') });
    const { status, body } = await call('/copied');
    expect(status).toBe(502);
    expect(body).toMatchObject({ error: 'LoadFailed', message: expect.stringContaining('env TOKEN of lambda test/copied fails authentication under key "new"') });
  });
});
