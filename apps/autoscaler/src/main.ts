import { configOrExit } from '@kublambda/config';
import { createLogger } from '@kublambda/logging';
import { LeaderElector, loadKubeConfig } from '@kublambda/reconcile-runtime';
import { serveAdmin } from './admin-server.ts';
import { createAutoscalerMetrics } from './autoscaler-metrics.ts';
import { parseAutoscalerConfig } from './config.ts';
import { kubeRunnerScale, kubeScaleEvents, watchRunnerEndpointSlices, watchRunnerPods } from './kube-runner-pool.ts';
import { metricsUrl, readyEndpoints, readyPodEndpoints } from './ready-endpoints.ts';
import { scrapeRunner } from './runner-metrics.ts';
import { ScalingLoop, runScalingLoop } from './scaling-loop.ts';

const logger = createLogger('autoscaler');
const config = configOrExit(() => parseAutoscalerConfig(process.env), logger);
const kubeConfig = loadKubeConfig();
const pool = { namespace: config.runner.namespace, deployment: config.runner.deployment, service: config.runner.service };

const metrics = createAutoscalerMetrics();
metrics.setLeader(false);
const admin = await serveAdmin(metrics.registry, config.admin.host, config.admin.port);

const shutdown = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => shutdown.abort());

/** While leading: watch the runner endpoints, scrape and decide; a new leader starts with no history. */
async function scaleWhileLeading(leading: AbortSignal): Promise<void> {
  metrics.setLeader(true);
  const { discovery, portName } = config.runner;
  const source =
    discovery.source === 'pods'
      ? (() => {
          const pods = watchRunnerPods(kubeConfig, pool, discovery.labelSelector, logger, config.relistIntervalMs);
          return { watch: pods, endpoints: () => readyPodEndpoints(pods.cache.list(), portName) };
        })()
      : (() => {
          const slices = watchRunnerEndpointSlices(kubeConfig, pool, logger, config.relistIntervalMs);
          return { watch: slices, endpoints: () => readyEndpoints(slices.cache.list(), portName) };
        })();
  const scale = kubeRunnerScale(kubeConfig, pool);
  // A failing runner is reported once until it answers again, not every second.
  const failing = new Set<string>();
  const loop = new ScalingLoop(
    {
      scaling: config.scaling,
      readyEndpoints: source.endpoints,
      scrape: async (endpoint) => {
        const sample = await scrapeRunner(metricsUrl(endpoint), config.scrapeTimeoutMs, {
          onFailure: (reason) => {
            if (!failing.has(endpoint.pod)) logger.warn('runner scrape failed; counted as busy', { pod: endpoint.pod, reason });
            failing.add(endpoint.pod);
          },
        });
        if (sample && failing.delete(endpoint.pod)) logger.info('runner scrape answers again', { pod: endpoint.pod });
        return sample;
      },
      scale,
      recordEvent: kubeScaleEvents(kubeConfig, pool, config.leaderElection.identity, () => scale.lastRead()?.metadata?.uid),
      metrics,
      logger,
    },
    Date.now(),
  );
  const stopLeading = new Promise<void>((resolve) => (leading.aborted ? resolve() : leading.addEventListener('abort', () => resolve(), { once: true })));
  await Promise.race([source.watch.synced, stopLeading]);
  if (!leading.aborted) {
    logger.info('scaling the runner pool', { deployment: `${pool.namespace}/${pool.deployment}`, discovery: discovery.source === 'pods' ? `pods ${discovery.labelSelector}` : `EndpointSlices of Service ${pool.service}`, identity: config.leaderElection.identity });
    await runScalingLoop(loop, config, logger, leading);
  }
  await source.watch.stop();
  metrics.setLeader(false);
}

const { identity, namespace: leaseNamespace, leaseName } = config.leaderElection;
const elector = new LeaderElector({ kubeConfig, logger, ...config.leaderElection });
// Serving (/healthz, /metrics) and waiting for the lease; only the leader scales.
logger.info('scaling', {
  identity,
  lease: `${leaseNamespace}/${leaseName}`,
  deployment: `${pool.namespace}/${pool.deployment}`,
  admin: admin.address(),
  scaling: config.scaling,
});
const outcome = await elector.run(scaleWhileLeading, shutdown.signal);
await new Promise((resolve) => admin.close(resolve));
logger.info('stopped', { outcome });
// A replica that lost its lease exits non-zero so it restarts clean, as client-go controllers do.
process.exit(outcome === 'lost' ? 1 : 0);
