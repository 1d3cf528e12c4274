import { startControlPlane, type ControlPlane } from '@kublambda/dev-servers';

declare global {
  var kublambdaControlPlane: ControlPlane | undefined;
}

export default async function startSharedControlPlane(): Promise<void> {
  const started = Date.now();
  // kwok gives Deployments (the lambdas' watchers) pods that are scheduled and become Ready.
  const controlPlane = await startControlPlane({ kwok: true });
  globalThis.kublambdaControlPlane = controlPlane;
  // Test workers are forked after this and inherit it.
  process.env.KUBECONFIG = controlPlane.kubeconfigPath;
  process.env.KUBLAMBDA_ETCD_URL = controlPlane.etcdUrl;
  console.log(
    `\ncontrol plane: kube-apiserver ${controlPlane.kubernetesVersion} at ${controlPlane.apiServerUrl}, ` +
      `started in ${Date.now() - started} ms, logs in ${controlPlane.dir}`,
  );
}
