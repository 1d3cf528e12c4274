// The local all-in-one: a real control plane with the Lambda CRD, Redis, an S3 server and an
// OCI registry on loopback, with the example lambdas applied. Runs until Ctrl-C.
//   node tools/local/up.ts [--dir <state dir>]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cacheDir, kubeBinary, kubectl, startControlPlane, startRedis, startRegistry, startS3 } from '@kublambda/dev-servers';

const { values } = parseArgs({ options: { dir: { type: 'string' } } });
const dir = path.resolve(values.dir ?? path.join(cacheDir(), 'local'));
const examples = path.resolve(import.meta.dirname, '../../examples');

const stops: Array<() => Promise<void>> = [];
async function stopAll(): Promise<void> {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
}

try {
  const controlPlane = await startControlPlane({ dir });
  stops.push(controlPlane.stop);
  const redis = await startRedis({ appendOnly: true });
  stops.push(redis.stop);
  const s3 = await startS3({ bucket: 'kublambda-artifacts' });
  stops.push(s3.stop);
  const registry = await startRegistry();
  stops.push(registry.stop);

  const applied = await kubectl(['apply', '-f', examples], { kubeconfig: controlPlane.kubeconfigPath });
  if (applied.exitCode !== 0) throw new Error(`applying ${examples} failed: ${applied.stderr}`);

  const kubectlDir = path.dirname(await kubeBinary('kubectl'));
  console.log(`
Kublambda local platform is up: Kubernetes ${controlPlane.kubernetesVersion} with the Lambda CRD.

  export KUBECONFIG=${controlPlane.kubeconfigPath}
  export PATH=${kubectlDir}:$PATH      # kubectl ${controlPlane.kubernetesVersion}
  kubectl get lam -A                    # the example lambdas from examples/
  kubectl explain lambda.spec

  API server  ${controlPlane.apiServerUrl}
  Redis       ${redis.url}
  S3          ${s3.url}  (access key ${s3.accessKey}, secret ${s3.secretKey}, bucket kublambda-artifacts)
  registry    ${registry.url}
  logs        ${dir}

Not running yet: api-controller, builder, runner, event-watcher, autoscaler. Until they
exist the lambdas are stored and validated but not built or served.
Ctrl-C stops everything.`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('stopping');
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await stopAll();
}
