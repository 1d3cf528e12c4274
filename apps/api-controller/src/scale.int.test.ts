// 200 lambdas applied at once, built and routed by one api-controller and one builder running
// as local processes against the real API server, Redis and S3.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { waitUntil } from '@kublambda/dev-servers';
import { LAMBDA_GROUP, LAMBDA_PLURAL, LAMBDA_VERSION, type Lambda } from '@kublambda/crd-types';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

const COUNT = 200;
let platform: LambdaPlatform;

beforeAll(async () => {
  platform = await startLambdaPlatform('scale');
  await platform.startBuilder('builder', { BUILD_CONCURRENCY: '4' });
  await platform.startController();
});
afterAll(async () => {
  await platform?.stop();
});

describe(`${COUNT} lambdas applied at once`, () => {
  it('all reach Ready', async () => {
    const api = platform.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    const names = Array.from({ length: COUNT }, (_, i) => `fn-${String(i).padStart(3, '0')}`);
    const started = Date.now();
    await platform.applyAll(names.map((name, i) => [name, { source: { inline: `export default async () => new Response("${name} ${i}")` } }]));
    let ready = 0;
    await waitUntil(
      `all ${COUNT} lambdas to be Ready`,
      async () => {
        const list = (await api.listNamespacedCustomObject({ group: LAMBDA_GROUP, version: LAMBDA_VERSION, plural: LAMBDA_PLURAL, namespace: platform.namespace })) as { items: Lambda[] };
        ready = list.items.filter(isReady).length;
        return ready === COUNT;
      },
      { timeoutMs: 240_000, intervalMs: 250, describe: () => `${ready} Ready` },
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(`${COUNT} lambdas from kubectl apply to all Ready: ${seconds.toFixed(1)} s`);
    expect((await platform.routes()).length).toBe(COUNT);
    expect((await platform.assetKeys()).length).toBe(COUNT);
  }, 300_000);
});
