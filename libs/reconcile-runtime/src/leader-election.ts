import * as k8s from '@kubernetes/client-node';
import type { Logger } from '@kublambda/logging';
import { describeError, isConflict, isNotFound } from './errors.ts';

export interface LeaderElectionOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** Name of the coordination.k8s.io/v1 Lease. */
  leaseName: string;
  /** This replica, for example its pod name. */
  identity: string;
  logger: Logger;
  /** How long a lease holder that stopped renewing keeps the lease. Default 15 s. */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down. Default 10 s. */
  renewDeadlineMs?: number;
  /** How often to try to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
}

type Attempt = 'acquired' | 'held-by-other';

/**
 * Lease-based leader election as client-go does it: a holder is considered alive while its
 * record keeps changing; expiry is judged by this replica's own clock from when it last saw
 * the record change, so clock skew between replicas does not matter.
 */
export class LeaderElector {
  readonly #options: Required<Omit<LeaderElectionOptions, 'kubeConfig' | 'logger'>> & Pick<LeaderElectionOptions, 'logger'>;
  readonly #leases: k8s.CoordinationV1Api;
  #observedVersion: string | undefined;
  #observedAt = 0;

  constructor(options: LeaderElectionOptions) {
    this.#options = {
      namespace: options.namespace,
      leaseName: options.leaseName,
      identity: options.identity,
      logger: options.logger,
      leaseDurationMs: options.leaseDurationMs ?? 15_000,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    this.#leases = options.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
  }

  /**
   * Waits to become leader, runs lead() while leading, and returns when leadership is lost
   * (lead's signal is aborted first) or when stop is aborted (then the lease is released so a
   * standby takes over at once). Returns whether leadership was lost rather than given up.
   */
  async run(lead: (leading: AbortSignal) => Promise<void>, stop: AbortSignal): Promise<'lost' | 'stopped'> {
    const { logger, identity, leaseName, retryPeriodMs, renewDeadlineMs } = this.#options;
    while (!stop.aborted && (await this.#tryAcquireOrRenew()) !== 'acquired') await pause(retryPeriodMs, stop);
    if (stop.aborted) return 'stopped';

    logger.info('became leader', { lease: leaseName, identity });
    const leading = new AbortController();
    const leadDone = lead(leading.signal).catch((error: unknown) => logger.error('leader work failed', { error: describeError(error) }));
    let lastRenewed = Date.now();
    let outcome: 'lost' | 'stopped' = 'stopped';
    while (!stop.aborted) {
      await pause(retryPeriodMs, stop);
      if (stop.aborted) break;
      if ((await this.#tryAcquireOrRenew()) === 'acquired') {
        lastRenewed = Date.now();
      } else if (Date.now() - lastRenewed > renewDeadlineMs) {
        outcome = 'lost';
        break;
      }
    }
    leading.abort();
    await leadDone;
    if (outcome === 'lost') logger.error('lost leadership', { lease: leaseName, identity });
    else await this.#release();
    return outcome;
  }

  async #tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, leaseName: name, identity, leaseDurationMs } = this.#options;
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    const now = new k8s.V1MicroTime();
    try {
      let lease: k8s.V1Lease;
      try {
        lease = await this.#leases.readNamespacedLease({ name, namespace });
      } catch (error) {
        if (!isNotFound(error)) throw error;
        await this.#leases.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
        });
        return 'acquired';
      }
      const spec = lease.spec ?? {};
      if (lease.metadata?.resourceVersion !== this.#observedVersion) {
        this.#observedVersion = lease.metadata?.resourceVersion;
        this.#observedAt = Date.now();
      }
      const holder = spec.holderIdentity ?? '';
      const holderAlive = this.#observedAt + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 > Date.now();
      if (holder !== '' && holder !== identity && holderAlive) return 'held-by-other';

      const renewing = holder === identity;
      const updated = await this.#leases.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { ...lease.metadata },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: renewing ? spec.acquireTime : now,
            renewTime: now,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
          },
        },
      });
      this.#observedVersion = updated.metadata?.resourceVersion;
      this.#observedAt = Date.now();
      return 'acquired';
    } catch (error) {
      if (!isConflict(error)) this.#options.logger.warn('lease update failed', { lease: name, error: describeError(error) });
      return 'held-by-other';
    }
  }

  async #release(): Promise<void> {
    const { namespace, leaseName: name, identity, logger } = this.#options;
    try {
      const lease = await this.#leases.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await this.#leases.replaceNamespacedLease({
        name,
        namespace,
        body: { metadata: { ...lease.metadata }, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime() } },
      });
      logger.info('released leadership', { lease: name, identity });
    } catch (error) {
      logger.warn('could not release the lease', { lease: name, error: describeError(error) });
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
