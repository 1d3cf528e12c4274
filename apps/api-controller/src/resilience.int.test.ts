// Kills api-controller and builder processes (SIGKILL, no chance to clean up) and checks the
// platform converges anyway. All processes run locally against the real API server, Redis and S3.
import { afterEach, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { logTail, waitUntil } from '@kublambda/dev-servers';
import { readFile } from 'node:fs/promises';
import { isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX } from '@kublambda/build-queue';

let platform: LambdaPlatform | undefined;
afterEach(async () => {
  await platform?.stop();
  platform = undefined;
});

const handler = (n: number) => ({ source: { inline: `export default async () => new Response("lambda ${n}")` } });

async function leaseHolder(p: LambdaPlatform): Promise<string | undefined> {
  const lease = await p.kubeConfig.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: 'kublambda-api-controller', namespace: p.namespace });
  return lease.spec?.holderIdentity;
}

async function eventReporters(p: LambdaPlatform, lambda: string): Promise<string[]> {
  const events = await p.kubeConfig.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: p.namespace, fieldSelector: `regarding.name=${lambda}` });
  return [...new Set(events.items.map((e) => e.reportingInstance!))];
}

describe('api-controller and builder under failure', () => {
  it('converges after the controller is killed in the middle of reconciling', async () => {
    platform = await startLambdaPlatform('kill-controller');
    await platform.startBuilder();
    const names = Array.from({ length: 20 }, (_, i) => `fn-${i}`);
    for (const [i, name] of names.entries()) await platform.apply(name, handler(i));

    const first = await platform.startController('first');
    // Kill it as soon as it has started on some of the lambdas but not finished all.
    await waitUntil(
      'the controller to start on the lambdas',
      async () => (await Promise.all(names.map((n) => platform!.get(n)))).some((l) => l?.metadata.finalizers?.length),
      { intervalMs: 20, describe: () => logTail(first.logFile) },
    );
    await first.kill();
    const readyWhenKilled = (await Promise.all(names.map((n) => platform!.get(n)))).filter(isReady).length;
    expect(readyWhenKilled).toBeLessThan(names.length);

    await platform.startController('second');
    const lambdas = await Promise.all(names.map((n) => platform!.waitFor(n, 'Ready', isReady)));
    const routes = await platform.routes();
    expect(routes.map((r) => r.name).sort()).toEqual([...names].sort());
    expect(new Set(lambdas.map((l) => l!.status!.artifact!.digest)).size).toBe(names.length);
    expect((await platform.assetKeys()).length).toBe(names.length);
  }, 120_000);

  it('lets only the leader of two replicas act, and the standby takes over when the leader dies', async () => {
    platform = await startLambdaPlatform('replicas');
    await platform.startBuilder();
    const a = await platform.startController('replica-a');
    const b = await platform.startController('replica-b');
    await platform.apply('before', handler(1));
    await platform.waitFor('before', 'Ready', isReady);

    const leader = await leaseHolder(platform);
    expect(['replica-a', 'replica-b']).toContain(leader);
    const [leaderProcess, standbyProcess, standby] = leader === 'replica-a' ? [a, b, 'replica-b'] : [b, a, 'replica-a'];
    expect(await eventReporters(platform, 'before')).toEqual([leader]);
    expect(await readFile(standbyProcess.logFile, 'utf8')).not.toContain('"message":"reconciling lambdas"');

    await leaderProcess.kill();
    const killedAt = Date.now();
    await platform.apply('after', handler(2));
    await platform.waitFor('after', 'Ready', isReady, 30_000);
    const takeoverMs = Date.now() - killedAt;
    expect(await leaseHolder(platform)).toBe(standby);
    expect(await eventReporters(platform, 'after')).toEqual([standby]);
    // Lease of 3 s in this test: the standby acts within a few seconds of the leader's death.
    expect(takeoverMs).toBeLessThan(15_000);
  }, 90_000);

  it('hands over at once when the leader shuts down cleanly (SIGTERM)', async () => {
    platform = await startLambdaPlatform('graceful');
    await platform.startBuilder();
    const a = await platform.startController('replica-a');
    const b = await platform.startController('replica-b');
    const leader = await waitUntil('a leader', () => leaseHolder(platform!));
    const [leaderProcess, standby] = leader === 'replica-a' ? [a, 'replica-b'] : [b, 'replica-a'];

    const stoppedAt = Date.now();
    await leaderProcess.stop();
    expect(await readFile(leaderProcess.logFile, 'utf8')).toContain('"message":"released leadership"');
    await waitUntil('the standby to hold the lease', async () => (await leaseHolder(platform!)) === standby, { intervalMs: 50 });
    // Released, not expired: well under the 3 s lease of this test.
    expect(Date.now() - stoppedAt).toBeLessThan(3_000);
    await platform.apply('after-handover', handler(3));
    await platform.waitFor('after-handover', 'Ready', isReady, 30_000);
    expect(await eventReporters(platform, 'after-handover')).toEqual([standby]);
  }, 60_000);

  it('finishes a build whose builder was killed in the middle of it', async () => {
    platform = await startLambdaPlatform('kill-builder');
    await platform.startController();
    const first = await platform.startBuilder('builder-doomed');
    const redis = new Redis(platform.redis.adminUrl);
    try {
      // Installing a dependency and type checking keep the job busy long enough to be killed in flight.
      await platform.apply('slow', {
        source: {
          files: {
            'package.json': JSON.stringify({ dependencies: { ms: '2.1.3' } }),
            'index.ts': 'import ms from "ms";\nexport default async () => new Response(String(ms("1m")));',
          },
        },
        build: { typeCheck: false },
      });
      await waitUntil('the build to become active', async () => (await redis.llen(`${BUILD_QUEUE_PREFIX}:${BUILD_QUEUE}:active`)) > 0, { intervalMs: 10 });
      await first.kill();
      const activeJob = await redis.lrange(`${BUILD_QUEUE_PREFIX}:${BUILD_QUEUE}:active`, 0, -1);
      expect(activeJob).toHaveLength(1);

      await platform.startBuilder('builder-rescuer');
      const lambda = await platform.waitFor('slow', 'Ready', isReady, 60_000);
      expect(lambda!.status!.artifact!.size).toBeGreaterThan(0);
      expect(await readFile(first.logFile, 'utf8')).not.toContain('"message":"built"');
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it('retries a build while the object store is down, and finishes once it is back', async () => {
    platform = await startLambdaPlatform('s3-down');
    const builder = await platform.startBuilder();
    await platform.startController();
    await platform.s3.pause();
    await platform.apply('patient', handler(7));
    await waitUntil('a failed build attempt', async () => (await readFile(builder.logFile, 'utf8')).includes('"message":"build attempt failed"'), {
      describe: () => logTail(builder.logFile),
    });
    expect(await readFile(builder.logFile, 'utf8')).toContain('ECONNREFUSED');
    const whileDown = await platform.get('patient');
    expect(isReady(whileDown)).toBe(false);

    await platform.s3.start();
    const lambda = await platform.waitFor('patient', 'Ready', isReady, 60_000);
    expect(lambda!.status!.conditions!.find((c) => c.type === 'Built')).toMatchObject({ status: 'True', reason: 'Built' });
    expect((await platform.assets.list()).map((a) => a.digest)).toEqual([lambda!.status!.artifact!.digest]);
  }, 90_000);
});
