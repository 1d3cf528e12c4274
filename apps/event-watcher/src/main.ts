import http from 'node:http';
import { configOrExit } from '@kublambda/config';
import { createLogger, forLambda } from '@kublambda/logging';
import { describeError, loadKubeConfig } from '@kublambda/reconcile-runtime';
import { createEventPoster } from '@kublambda/watch-triggers';
import { connectCheckpointStore } from './checkpoint-store.ts';
import { parseEventWatcherConfig } from './config.ts';
import { runWhileHoldingLease } from './lease-term.ts';
import { EventWatcher } from './watcher.ts';
import { createWatcherMetrics } from './watcher-metrics.ts';

const SHUTDOWN_GRACE_MS = 10_000;

const config = configOrExit(() => parseEventWatcherConfig(process.env), createLogger('event-watcher'));
const logger = forLambda(createLogger('event-watcher'), config.watcher.lambda).child({ holder: config.identity });
const kubeConfig = loadKubeConfig();
const store = connectCheckpointStore({
  url: config.redisUrl,
  lambda: config.watcher.lambda,
  holder: config.identity,
  leaseDurationMs: config.leaseDurationMs,
  onError: (error) => logger.warn('redis connection error', { error: describeError(error) }),
});
const poster = createEventPoster({ url: config.runnerUrl + config.watcher.target.path, host: config.watcher.target.host, timeoutMs: config.delivery.timeoutMs, concurrency: config.delivery.concurrency });
let watcher: EventWatcher | undefined;
const metrics = createWatcherMetrics({
  pendingEvents: () => watcher?.pendingEvents ?? 0,
  lagSeconds: () => watcher?.lagSeconds() ?? 0,
  leaseHeld: () => watcher?.leaseHeld ?? false,
});
watcher = new EventWatcher({ config, kubeConfig, store, poster, metrics, logger });

const json = (response: http.ServerResponse, status: number, body: unknown) => void response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const server = http.createServer((request, response) => {
  const path = request.url?.split('?')[0];
  if (path === '/healthz') json(response, 200, { status: 'ok' });
  else if (path === '/readyz') {
    const readiness = watcher.readiness();
    json(response, readiness.ready ? 200 : 503, readiness.ready ? { status: 'ready' } : { status: 'not ready', reason: readiness.reason });
  } else if (path === '/metrics') {
    void metrics.registry.metrics().then((text) => void response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
  } else json(response, 404, { error: 'not found' });
});
server.listen(config.port, config.host);
await new Promise((resolve) => server.once('listening', resolve));

const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
process.once('SIGINT', () => stop.abort());
logger.info('watching', {
  port: (server.address() as { port: number }).port,
  triggers: config.watcher.triggers.map((trigger) => ({ index: trigger.index, resource: trigger.resource, namespace: trigger.namespace, labelSelector: trigger.labelSelector })),
});
await runWhileHoldingLease(
  {
    store,
    durationMs: config.leaseDurationMs,
    renewMs: config.leaseRenewMs,
    shutdownGraceMs: SHUTDOWN_GRACE_MS,
    logger,
    onHeldChange: (held) => watcher.setLeaseHeld(held),
  },
  (term) => watcher.runTerm(term),
  stop.signal,
);
await new Promise((resolve) => server.close(resolve));
poster.close();
await store.close();
logger.info('stopped');
process.exit(0);
