// Without ADMIN_PORT the builder serves nothing: it builds, and no admin server exists.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { startPlatformService, startRedis, type ManagedProcess, type RedisServer } from '@kublambda/dev-servers';
import { listeningAddresses } from './listening-ports.testing.ts';

let redis: RedisServer;
let dir: string;
let builder: ManagedProcess | undefined;

beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-admin-off-'));
  builder = await startPlatformService('builder', { REDIS_URL: redis.urlFor('builder'), ARTIFACT_STORE_URL: `file://${dir}/assets`, BUILDER_CACHE_DIR: path.join(dir, 'cache') }, { logDir: dir });
}, 60_000);

afterAll(async () => {
  await builder?.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('starts building with no admin server when ADMIN_PORT is unset', async () => {
  expect(await listeningAddresses(builder!.pid)).toEqual([]);
});
