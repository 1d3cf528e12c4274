// api-controller's admin API for the CLI's integration tests: the product's own router
// (createAdminApi with its Redis data) served on a free loopback port, behind a stand-in
// api-controller pod in a platform namespace of the test's own. No api-controller process runs
// (it would also reconcile the shared cluster's lambdas); the CLI reaches the API exactly as it
// would in a cluster: through the real API server's port-forward to that pod.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as k8s from '@kubernetes/client-node';
import express from 'express';
import { ADMIN_PORT_NAME, API_CONTROLLER_POD_LABELS } from '@kublambda/crd-types';
import { createTestNamespace, startPodStandIn } from '@kublambda/dev-servers';
import type { RedisConnection } from '@kublambda/redis-connection';
import { ADMIN_API_PATH, createAdminApi } from '../../api-controller/src/admin-api.ts';
import { redisAdminData } from '../../api-controller/src/redis-admin-data.ts';

export interface ControllerAdminStandIn {
  platformNamespace: string;
  stop(): Promise<void>;
}

export async function startControllerAdminStandIn(kubeConfig: k8s.KubeConfig, redis: RedisConnection, runnerUrl: string): Promise<ControllerAdminStandIn> {
  const platform = await createTestNamespace(kubeConfig, 'cli-platform');
  const app = express().use(ADMIN_API_PATH, createAdminApi(redisAdminData(redis, redis, runnerUrl)));
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const standIn = await startPodStandIn(kubeConfig, {
    namespace: platform.name,
    name: 'kublambda-api-controller',
    labels: { ...API_CONTROLLER_POD_LABELS },
    port: { name: ADMIN_PORT_NAME, containerPort: 9091 },
    target: { address: '127.0.0.1', port: (server.address() as AddressInfo).port },
  });
  return {
    platformNamespace: platform.name,
    stop: async () => {
      await standIn.delete();
      server.close();
      await platform.delete();
    },
  };
}
