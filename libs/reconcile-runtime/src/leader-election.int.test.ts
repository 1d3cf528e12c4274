// Runs against the real kube-apiserver of the Jest global setup. The "crashed leader" is a
// child process killed with SIGKILL, so it cannot release its lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { execa } from 'execa';
import * as k8s from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestNamespace, testKubeConfig, waitUntil } from '@kublambda/dev-servers';
import { createLogger } from '@kublambda/logging';
import { LeaderElector } from './index.ts';

const kubeConfig = testKubeConfig();
const logger = createLogger('test', 'silent');
const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
let namespace: { name: string; delete(): Promise<void> };

beforeAll(async () => {
  namespace = await createTestNamespace(kubeConfig, 'lease');
});
afterAll(async () => {
  await namespace.delete();
});


function elector(identity: string, leaseName: string) {
  return new LeaderElector({ kubeConfig, namespace: namespace.name, leaseName, identity, logger, ...timing });
}

/** Runs an elector; `leading` tells whether it leads right now. */
function candidate(identity: string, leaseName: string) {
  const stop = new AbortController();
  const state = { leading: false, becameLeaderAt: 0 };
  const outcome = elector(identity, leaseName).run(async (signal) => {
    state.leading = true;
    state.becameLeaderAt = Date.now();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    state.leading = false;
  }, stop.signal);
  return { state, outcome, stop: () => (stop.abort(), outcome) };
}

async function holder(leaseName: string): Promise<string | undefined> {
  const lease = await kubeConfig.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: leaseName, namespace: namespace.name });
  return lease.spec?.holderIdentity;
}

describe('LeaderElector on a real Lease', () => {
  it('lets exactly one candidate lead, and hands over at once when the leader stops', async () => {
    const a = candidate('a', 'handover');
    await waitUntil('a to lead', () => a.state.leading);
    const b = candidate('b', 'handover');
    await sleep(timing.leaseDurationMs + 1_000);
    expect(b.state.leading).toBe(false);
    expect(await holder('handover')).toBe('a');

    const stoppedAt = Date.now();
    expect(await a.stop()).toBe('stopped');
    expect(a.state.leading).toBe(false);
    await waitUntil('b to lead', () => b.state.leading);
    // Released, not expired: b takes over within a couple of retry periods.
    expect(b.state.becameLeaderAt - stoppedAt).toBeLessThan(timing.leaseDurationMs);
    expect(await holder('handover')).toBe('b');
    await b.stop();
  });

  it('takes over from a leader that was killed, once its lease expires', async () => {
    const script = `
      import { LeaderElector } from ${JSON.stringify(path.join(import.meta.dirname, 'index.ts'))};
      import { createLogger } from '@kublambda/logging';
      import * as k8s from '@kubernetes/client-node';
      const kubeConfig = new k8s.KubeConfig();
      kubeConfig.loadFromFile(process.env.KUBECONFIG);
      await new LeaderElector({ kubeConfig, namespace: ${JSON.stringify(namespace.name)}, leaseName: 'crash', identity: 'doomed',
        logger: createLogger('doomed', 'silent'), ...${JSON.stringify(timing)} })
        .run(async () => { console.log('leading'); await new Promise(() => {}); }, new AbortController().signal);`;
    const doomed = execa(process.execPath, ['--input-type=module', '-e', script], { cwd: path.resolve(import.meta.dirname, '../../..'), reject: false });
    try {
      await new Promise<void>((resolve, reject) => {
        doomed.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('leading') && resolve());
        void doomed.then((result) => reject(new Error(`leader process exited: ${result.stderr}`)));
      });
      const standby = candidate('standby', 'crash');
      await sleep(1_000);
      expect(standby.state.leading).toBe(false);

      doomed.kill('SIGKILL');
      const killedAt = Date.now();
      await waitUntil('the standby to lead', () => standby.state.leading, { intervalMs: 20 });
      const takeover = standby.state.becameLeaderAt - killedAt;
      expect(takeover).toBeGreaterThan(timing.leaseDurationMs - timing.renewDeadlineMs);
      expect(takeover).toBeLessThan(timing.leaseDurationMs + 3 * timing.retryPeriodMs + 1_000);
      expect(await holder('crash')).toBe('standby');
      await standby.stop();
    } finally {
      doomed.kill('SIGKILL');
    }
  });
});
