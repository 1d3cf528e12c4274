// The local all-in-one: a real control plane with the Lambda CRD, Redis, an S3 server and an
// OCI registry on loopback, kwok with a fake node, api-controller, builder and runner as local
// processes, an event-watcher process for each lambda with watch triggers, and the example
// lambdas applied. Runs until Ctrl-C.
//   node tools/local/up.ts [--dir <state dir>]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cacheDir, freePort, kubeBinary, kubectl, startControlPlane, startPlatformService, startPodStandIn, startRedis, startRegistry, startS3 } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey } from '@kublambda/route-table';
import { RegistryClient, pushBaseImage } from '@kublambda/oci-image';
import { ADMIN_PORT_NAME, API_CONTROLLER_POD_LABELS, BUILDER_POD_LABELS, RUNNER_HTTP_PORT_NAME, RUNNER_POD_LABELS } from '@kublambda/crd-types';
import { createRunnerBaseImage, runnerBaseImageFiles } from '../images/runner-base-image.ts';
import { runWatchersLocally } from './local-watchers.ts';

const { values } = parseArgs({ options: { dir: { type: 'string' } } });
const dir = path.resolve(values.dir ?? path.join(cacheDir(), 'local'));
const examples = path.resolve(import.meta.dirname, '../../examples');

const stops: Array<() => Promise<void>> = [];
async function stopAll(): Promise<void> {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
}

try {
  const controlPlane = await startControlPlane({ dir, kwok: true });
  stops.push(controlPlane.stop);
  const redis = await startRedis({ appendOnly: true });
  stops.push(redis.stop);
  const s3 = await startS3({ bucket: 'kublambda-artifacts' });
  stops.push(s3.stop);
  const registry = await startRegistry();
  stops.push(registry.stop);

  // Each lambda's image is its asset on top of the runner base image, assembled here without
  // Docker (tools/images) and pushed to the local registry; the builder layers assets onto it.
  const registryAccess = { url: registry.url, username: registry.username, password: registry.password, insecure: true };
  const baseImage = { repo: 'kublambda/runner-base', tag: 'local' };
  await pushBaseImage(new RegistryClient(registryAccess), baseImage, createRunnerBaseImage(await runnerBaseImageFiles()));
  const imageRegistryEnv = {
    IMAGE_REGISTRY_URL: registry.url,
    IMAGE_REGISTRY_USERNAME: registry.username,
    IMAGE_REGISTRY_PASSWORD: registry.password,
    IMAGE_REGISTRY_INSECURE: 'true',
  };

  const kubeconfig = { kubeconfig: controlPlane.kubeconfigPath };
  const platformNamespace = 'kublambda-system';
  const namespace = await kubectl(['create', 'namespace', platformNamespace], kubeconfig);
  if (namespace.exitCode !== 0 && !namespace.stderr.includes('AlreadyExists')) throw new Error(`creating ${platformNamespace}: ${namespace.stderr}`);
  const serviceEnv = {
    KUBECONFIG: controlPlane.kubeconfigPath,
    ARTIFACT_STORE_URL: 's3://kublambda-artifacts/',
    S3_ENDPOINT: s3.url,
    S3_ACCESS_KEY: s3.accessKey,
    S3_SECRET_KEY: s3.secretKey,
    S3_REGION: s3.region,
    LEADER_ELECTION_NAMESPACE: platformNamespace,
    BUILDER_CACHE_DIR: path.join(dir, 'builder-cache'),
  };
  // A key of this run's own for the Secret values in route records (a Kubernetes Secret in a
  // cluster): only api-controller, which encrypts, and the runner, which decrypts, get it.
  const envKeys = { ENV_ENCRYPTION_KEYS: generateEnvEncryptionKey('local') };
  const runnerPort = await freePort();
  const runnerUrl = `http://127.0.0.1:${runnerPort}`;
  // The builder's admin server (loopback), with retries allowed: `kublambda builds` reaches it
  // through the API server's port-forward to the kublambda-builder pod (below).
  const builderAdminPort = await freePort();
  // api-controller's admin API (dead letters, state tables): kublambda events and state reach it
  // through a port-forward to the kublambda-api-controller pod; retried events go to the runner.
  const controllerAdminPort = await freePort();
  const appEnv = {
    builder: {
      ...serviceEnv,
      ...imageRegistryEnv,
      IMAGE_BACKEND: 'direct',
      IMAGE_BASE: `${baseImage.repo}:${baseImage.tag}`,
      ADMIN_PORT: String(builderAdminPort),
      BUILD_BOARD_ACTIONS: 'true',
    },
    // The runner's port is the ingress here: each lambda's status.url is on it.
    'api-controller': { ...serviceEnv, ...envKeys, ...imageRegistryEnv, IMAGE_BUILDS: 'on', EXTERNAL_BASE_URL: runnerUrl, ADMIN_PORT: String(controllerAdminPort), RUNNER_URL: runnerUrl },
    runner: { ...serviceEnv, ...envKeys, HOST: '127.0.0.1', PORT: String(runnerPort), ASSET_CACHE_DIR: path.join(dir, 'runner-assets') },
  };
  for (const app of ['builder', 'api-controller', 'runner'] as const) {
    // Each service gets its own Redis user, with only what it needs (libs/redis-acl).
    // The runner's output also in the CRI format, which kwok serves as its stand-in pod's log.
    const service = await startPlatformService(app, { ...appEnv[app], REDIS_URL: redis.urlFor(app) }, { logDir: dir, criLog: app === 'runner' });
    stops.push(() => service.stop());
  }
  // The builder runs here, not in a pod; a kublambda-builder Deployment stands for it (kwok makes
  // its pod Ready, nothing runs in it) and its pod's admin port leads to the local admin server.
  // It stays until the control plane stops.
  await startPodStandIn(controlPlane.kubeConfig(), {
    namespace: platformNamespace,
    name: 'kublambda-builder',
    labels: BUILDER_POD_LABELS,
    port: { name: ADMIN_PORT_NAME, containerPort: 9100 },
    target: { address: '127.0.0.1', port: builderAdminPort },
  });
  await startPodStandIn(controlPlane.kubeConfig(), {
    namespace: platformNamespace,
    name: 'kublambda-api-controller',
    labels: { ...API_CONTROLLER_POD_LABELS },
    port: { name: ADMIN_PORT_NAME, containerPort: 9091 },
    target: { address: '127.0.0.1', port: controllerAdminPort },
  });
  // The runner's stand-in: kublambda invoke port-forwards to its http port, kublambda logs reads
  // its log (pods/log), both through the API server, as they reach runner pods in a cluster.
  await startPodStandIn(controlPlane.kubeConfig(), {
    namespace: platformNamespace,
    name: 'kublambda-runner',
    labels: { ...RUNNER_POD_LABELS },
    port: { name: RUNNER_HTTP_PORT_NAME, containerPort: 8080 },
    target: { address: '127.0.0.1', port: runnerPort },
    logsFile: path.join(dir, 'runner.cri.log'),
  });
  const watchers = await runWatchersLocally({ kubeConfig: controlPlane.kubeConfig(), runnerUrl, logDir: dir, log: (line) => console.log(`event-watcher: ${line}`) });
  stops.push(() => watchers.stop());

  const applied = await kubectl(['apply', '-f', examples], kubeconfig);
  if (applied.exitCode !== 0) throw new Error(`applying ${examples} failed: ${applied.stderr}`);

  const kubectlDir = path.dirname(await kubeBinary('kubectl'));
  console.log(`
Kublambda local platform is up: Kubernetes ${controlPlane.kubernetesVersion} with the Lambda CRD.

  export KUBECONFIG=${controlPlane.kubeconfigPath}
  export PATH=${kubectlDir}:$PATH      # kubectl ${controlPlane.kubernetesVersion}
  kubectl get lam -A                    # the example lambdas from examples/, with their images
  kubectl explain lambda.spec
  kubectl wait --for=condition=Ready lam/hello
  curl ${runnerUrl}/hello?name=you     # the hello lambda, through the runner
  curl ${runnerUrl}/visits             # counts in its state table "visits"
  kubectl create configmap demo --from-literal=enabled=true && kubectl label configmap demo app=demo
                                        # visits is called on that change too (its watch trigger)
  kubectl apply -f examples/hello.yaml  # edit it: it is rebuilt and served anew

  runner      ${runnerUrl}
  API server  ${controlPlane.apiServerUrl}
  Redis       redis://${redis.host}:${redis.port}  (a user per service, none without a password)
  Redis admin ${redis.adminUrl}  (everything: for you, never for a lambda)
  CLI         npx kublambda invoke hello --path '?name=you'   # through the API server (port-forward)
              npx kublambda logs visits                      # the lambda's console output (pods/log)
              npx kublambda builds -A                        # the build queue (port-forward)
              npx kublambda events visits                    # its watch trigger's dead letters
              npx kublambda state visits visits              # its state table (port-forward)
  build board http://127.0.0.1:${builderAdminPort}/builds/
  S3          ${s3.url}  (access key ${s3.accessKey}, secret ${s3.secretKey}, bucket kublambda-artifacts)
  registry    ${registry.url}  (user ${registry.username}, password ${registry.password}; nothing without them)
  logs        ${dir}

Running: api-controller and builder (they build each lambda into an asset in S3 and an image
in the registry, on the runner base image assembled here, and publish its route in Redis), the runner (serves each route over HTTP, with state tables in Redis), and
for each lambda with watch triggers the event-watcher its Deployment would run, as a local
process with that Deployment's env and its ServiceAccount's token (kwok makes the pods Ready;
nothing runs in them). The api-controller's, builder's and runner's pods (Deployments
kublambda-api-controller, kublambda-builder and kublambda-runner in ${platformNamespace}) are
stand-ins of the same kind: their ports lead to the local processes and the runner pod's log is the
runner's output, so the CLI reaches them all through the API server. Not running yet: the autoscaler.
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
