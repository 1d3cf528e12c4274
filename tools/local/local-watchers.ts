// The local all-in-one has no kubelet: api-controller makes each lambda's watcher Deployment,
// and this runs what its pod would run as a local process (startDeploymentLocally: the
// container's env, the ServiceAccount's token), started anew when the Deployment changes and
// stopped when it goes.
import * as k8s from '@kubernetes/client-node';
import { freePort, startDeploymentLocally, type LocalDeployment } from '@kublambda/dev-servers';

export const WATCHER_DEPLOYMENT_SELECTOR = 'app.kubernetes.io/component=event-watcher,app.kubernetes.io/managed-by=kublambda-api-controller';

export interface LocalWatchersOptions {
  kubeConfig: k8s.KubeConfig;
  /** The runner's URL here, in place of the runner Service's. */
  runnerUrl: string;
  logDir: string;
  log?: (line: string) => void;
}

export interface LocalWatchers {
  /** The watchers running now, by namespace/name of their Deployment. */
  running(): Map<string, LocalDeployment>;
  stop(): Promise<void>;
}

export async function runWatchersLocally(options: LocalWatchersOptions): Promise<LocalWatchers> {
  const apps = options.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const running = new Map<string, LocalDeployment>();
  // One change at a time per Deployment, in order.
  const pending = new Map<string, Promise<void>>();
  const log = options.log ?? (() => {});
  let stopped = false;

  const sync = (deployment: k8s.V1Deployment, deleted: boolean) => {
    const { namespace, name, generation = 0 } = deployment.metadata!;
    const key = `${namespace}/${name}`;
    const next = (pending.get(key) ?? Promise.resolve()).then(async () => {
      const current = running.get(key);
      if (!deleted && !stopped && current?.generation === generation) return;
      if (current) {
        running.delete(key);
        await current.process.stop();
      }
      if (deleted || stopped) return;
      const port = await freePort();
      const started = await startDeploymentLocally({
        kubeConfig: options.kubeConfig,
        namespace: namespace!,
        name: name!,
        app: 'event-watcher',
        env: { RUNNER_URL: options.runnerUrl, HOST: '127.0.0.1', PORT: String(port) },
        logDir: options.logDir,
        processName: `watcher-${namespace}-${name}`,
      });
      running.set(key, started);
      log(`started ${key} (generation ${started.generation}) on port ${port}`);
    }).catch((error: unknown) => log(`could not run ${key}: ${(error as Error).message}`));
    pending.set(key, next);
  };

  const informer = k8s.makeInformer(
    options.kubeConfig,
    '/apis/apps/v1/deployments',
    () => apps.listDeploymentForAllNamespaces({ labelSelector: WATCHER_DEPLOYMENT_SELECTOR }),
    WATCHER_DEPLOYMENT_SELECTOR,
  );
  informer.on(k8s.ADD, (d) => sync(d, false));
  informer.on(k8s.UPDATE, (d) => sync(d, false));
  informer.on(k8s.DELETE, (d) => sync(d, true));
  informer.on(k8s.ERROR, () => {
    if (!stopped) setTimeout(() => void informer.start(), 1_000);
  });
  await informer.start();

  return {
    running: () => running,
    stop: async () => {
      stopped = true;
      await informer.stop();
      await Promise.all(pending.values());
      await Promise.all([...running.values()].map((watcher) => watcher.process.stop()));
      running.clear();
    },
  };
}
