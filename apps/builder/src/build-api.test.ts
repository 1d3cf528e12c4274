import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import type { Queue } from 'bullmq';
import express from 'express';
import { BUILD_API_PATH, createBuildApi, parseBuildFilter } from './build-api.ts';

/** The API on a free loopback port, over a queue that must not be touched. */
async function serve(retries: boolean): Promise<{ url: string; close(): void }> {
  const untouched = new Proxy({}, { get: () => { throw new Error('the queue was read'); } }) as Queue;
  const app = express().use(BUILD_API_PATH, createBuildApi(untouched, { retries }));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${BUILD_API_PATH}`, close: () => server.close() };
}

describe('the build API', () => {
  it('refuses retries unless BUILD_BOARD_ACTIONS=true, saying so, before looking at the queue', async () => {
    const api = await serve(false);
    try {
      const response = await fetch(`${api.url}/${encodeURIComponent('shop/hello/abc')}/retry`, { method: 'POST' });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: 'retrying builds is off: the builder runs with BUILD_BOARD_ACTIONS=false', code: 403 });
    } finally {
      api.close();
    }
  });

  it('refuses an unknown state with 400', async () => {
    const api = await serve(true);
    try {
      const response = await fetch(`${api.url}?state=done`);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'state must be one of waiting, active, completed, failed, not "done"', code: 400 });
    } finally {
      api.close();
    }
  });
});

describe('parseBuildFilter', () => {
  it.each([
    [{}, { namespace: undefined, lambda: undefined, state: undefined }],
    [{ namespace: 'shop', lambda: 'hello', state: 'failed' }, { namespace: 'shop', lambda: 'hello', state: 'failed' }],
    [{ namespace: '' }, { namespace: undefined, lambda: undefined, state: undefined }],
  ])('%j', (query, filter) => {
    expect(parseBuildFilter(query)).toEqual(filter);
  });

  it('refuses a parameter given twice', () => {
    expect(() => parseBuildFilter({ namespace: ['a', 'b'] })).toThrow('namespace must be given once');
  });
});
