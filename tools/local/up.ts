// The local all-in-one: a real control plane with the Lambda CRD, Redis, the artifact store (a
// local directory, or an S3 server with --s3) and an OCI registry on loopback, kwok with a fake
// node, api-controller, builder and runner as local processes, an event-watcher process for each lambda with watch triggers, and the example
// lambdas applied. Runs until Ctrl-C or `npm run down`; state (the cluster's objects, Redis, the
// artifacts, the images) stays in the directory for the next start.
//   node tools/local/up.ts [--dir <state dir>] [--reset] [--s3] [--npm-registry <url>]
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cacheDir, freePort, kubeBinary, kubectl, startControlPlane, startPlatformService, startPodStandIn, startRedis, startRegistry, startS3, waitUntil } from '@kublambda/dev-servers';
import { generateEnvEncryptionKey } from '@kublambda/route-table';
import { RegistryClient, pushBaseImage } from '@kublambda/oci-image';
import { ADMIN_PORT_NAME, API_CONTROLLER_POD_LABELS, BUILDER_POD_LABELS, labelSelector, lambdaPath, RUNNER_POD_LABELS } from '@kublambda/crd-types';
import { createRunnerBaseImage, runnerBaseImageFiles } from '../images/runner-base-image.ts';
import { lambdaForDeploy, readDeploySource } from '../../apps/cli/src/deploy-source.ts';
import { FIELD_MANAGER } from '../../apps/cli/src/lambda-client.ts';
import { UP_PID_FILE } from './down.ts';
import { startLocalRunnerPool } from './local-runners.ts';
import { runWatchersLocally } from './local-watchers.ts';

/**
 * The autoscaler's settings here: 10 requests in flight per runner (7 at 70%) rather than 100,
 * and a 30 s stable window, so a few concurrent clients show it adding a runner, and it lets go
 * of them soon after; at most 4 runners on one machine.
 */
export const LOCAL_SCALING = { TARGET_CONCURRENCY: '10', STABLE_WINDOW_SECONDS: '30', MIN_REPLICAS: '1', MAX_REPLICAS: '4' };

const { values } = parseArgs({ options: { dir: { type: 'string' }, reset: { type: 'boolean' }, s3: { type: 'boolean' }, 'npm-registry': { type: 'string' } } });
const dir = path.resolve(values.dir ?? path.join(cacheDir(), 'local'));
const examples = path.resolve(import.meta.dirname, '../../examples');
const started = Date.now();

/** One line per step, with how long it took: a first start builds and downloads a lot. */
async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  const begun = Date.now();
  console.log(`up: ${what}...`);
  const result = await run();
  console.log(`up: ${what}: done in ${((Date.now() - begun) / 1000).toFixed(1)} s`);
  return result;
}

if (values.reset) {
  await rm(dir, { recursive: true, force: true });
  console.log(`up: --reset: removed ${dir}`);
}
await mkdir(dir, { recursive: true });
await checkArtifactStoreKind(path.join(dir, 'artifact-store'), values.s3 ? 's3' : 'directory');
// `npm run down` (tools/local/down.ts) signals the process whose pid is here.
const pidFile = path.join(dir, UP_PID_FILE);
await writeFile(pidFile, `${process.pid}\n`);

const stops: Array<() => Promise<void>> = [];
async function stopAll(): Promise<void> {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error));
}

try {
  const controlPlane = await step('Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)', () => startControlPlane({ dir, kwok: true }));
  stops.push(controlPlane.stop);
  const [redis, s3, registry] = await step(`Redis, ${values.s3 ? 'the S3 server' : 'the artifact directory'} and the OCI registry`, () =>
    Promise.all([
      startRedis({ appendOnly: true, dir: path.join(dir, 'redis') }),
      values.s3 ? startS3({ bucket: 'kublambda-artifacts', dir: path.join(dir, 's3') }) : undefined,
      startRegistry({ dir: path.join(dir, 'registry') }),
    ]),
  );
  stops.push(redis.stop, registry.stop);
  if (s3) stops.push(s3.stop);
  // The artifact store: a directory of this machine by default (only the platform's processes
  // read it; a lambda's worker may read nothing outside its own), an S3 server with --s3.
  const artifactsDir = path.join(dir, 'artifacts');
  const artifactStoreEnv: Record<string, string> = s3
    ? { ARTIFACT_STORE_URL: 's3://kublambda-artifacts/', S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_REGION: s3.region }
    : { ARTIFACT_STORE_URL: pathToFileURL(artifactsDir).href };

  // Each lambda's image is its asset on top of the runner base image, assembled here without
  // Docker (tools/images) and pushed to the local registry; the builder layers assets onto it.
  const registryAccess = { url: registry.url, username: registry.username, password: registry.password, insecure: true };
  const baseImage = { repo: 'kublambda/runner-base', tag: 'local' };
  await step('the runner base image (assembled, pushed to the registry)', async () => pushBaseImage(new RegistryClient(registryAccess), baseImage, createRunnerBaseImage(await runnerBaseImageFiles())));
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
    ...artifactStoreEnv,
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
      ...(values['npm-registry'] ? { NPM_REGISTRY: values['npm-registry'] } : {}),
    },
    // The runner's port is the ingress here: each lambda's status.url is on it.
    'api-controller': { ...serviceEnv, ...envKeys, ...imageRegistryEnv, IMAGE_BUILDS: 'on', EXTERNAL_BASE_URL: runnerUrl, EXTERNAL_HOST_SUFFIX: `.localhost:${runnerPort}`, ADMIN_PORT: String(controllerAdminPort), RUNNER_URL: runnerUrl },
  };
  // Every runner replica's environment; each listens on its pod's IP (local-runners.ts).
  // A host rule's URL is <host>.localhost on the runner port (curl and browsers resolve *.localhost
  // to loopback); the runners route <host>.localhost as <host>.
  const runnerEnv = { ...serviceEnv, ...envKeys, ASSET_CACHE_DIR: path.join(dir, 'runner-assets'), REDIS_URL: redis.urlFor('runner'), HOST_SUFFIX: '.localhost' };
  await step('api-controller and builder', async () => {
    for (const app of ['builder', 'api-controller'] as const) {
      // Each service gets its own Redis user, with only what it needs (libs/redis-acl).
      const service = await startPlatformService(app, { ...appEnv[app], REDIS_URL: redis.urlFor(app) }, { logDir: dir });
      stops.push(() => service.stop());
    }
  });
  // The runner pool: the kublambda-runner Deployment, a runner process per pod, this port in front.
  await step('the runner pool (a runner per pod of kublambda-runner) and the autoscaler', async () => {
    const pool = await startLocalRunnerPool({ kubeConfig: controlPlane.kubeConfig(), namespace: platformNamespace, env: runnerEnv, logDir: dir, ingress: { host: '127.0.0.1', port: runnerPort } });
    stops.push(() => pool.stop());
    await waitUntil('a runner to serve', async () => pool.pods.served.size > 0, { timeoutMs: 60_000 });
    const autoscaler = await startPlatformService('autoscaler', {
      KUBECONFIG: controlPlane.kubeconfigPath,
      POD_NAMESPACE: platformNamespace,
      LEADER_ELECTION_NAMESPACE: platformNamespace,
      POD_NAME: 'autoscaler-local',
      // kwok's pods have loopback IPs, which the API server refuses in EndpointSlices: find them as pods.
      RUNNER_DISCOVERY: 'pods',
      RUNNER_POD_SELECTOR: labelSelector(RUNNER_POD_LABELS),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(await freePort()),
      ...LOCAL_SCALING,
    }, { logDir: dir });
    stops.push(() => autoscaler.stop());
    return pool;
  });
  // api-controller and the builder run here, not in pods: a Deployment of each stands for it
  // (kwok makes its pod Ready, nothing runs in it) and its pod's admin port leads to the local
  // process, so the CLI reaches it through the API server's port-forward as in a cluster: builds
  // (the builder's), events and state (api-controller's). The runner pods are served by
  // local-runners.ts. They stay until the control plane stops.
  const standIns = [
    { name: 'kublambda-builder', labels: BUILDER_POD_LABELS, port: { name: ADMIN_PORT_NAME, containerPort: 9100 }, localPort: builderAdminPort },
    { name: 'kublambda-api-controller', labels: API_CONTROLLER_POD_LABELS, port: { name: ADMIN_PORT_NAME, containerPort: 9091 }, localPort: controllerAdminPort },
  ];
  for (const { localPort, labels, ...standIn } of standIns) {
    await startPodStandIn(controlPlane.kubeConfig(), { namespace: platformNamespace, labels: { ...labels }, target: { address: '127.0.0.1', port: localPort }, ...standIn });
  }
  const watchers = await runWatchersLocally({ kubeConfig: controlPlane.kubeConfig(), runnerUrl, logDir: dir, log: (line) => console.log(`event-watcher: ${line}`) });
  stops.push(() => watchers.stop());

  const exampleLambdas = await step(`the examples (${examples})`, () => applyExamples(kubeconfig.kubeconfig));

  const kubectlDir = path.dirname(await kubeBinary('kubectl'));
  console.log(`
Kublambda local platform is up: Kubernetes ${controlPlane.kubernetesVersion} with the Lambda CRD.

  export KUBECONFIG=${controlPlane.kubeconfigPath}
  export PATH=${kubectlDir}:$PATH      # kubectl ${controlPlane.kubernetesVersion}
  kubectl get lam -A                    # the example lambdas from examples/, with their URLs and images
  kubectl explain lambda.spec
  kubectl wait --for=condition=Ready lam/hello
  curl ${runnerUrl}/hello?name=you     # the hello lambda, through the runner
  curl ${runnerUrl}/visits             # counts in its state table "visits"
  kubectl create configmap demo --from-literal=enabled=true && kubectl label configmap demo app=demo
                                        # visits is called on that change too (its watch trigger)
  kubectl apply -f examples/hello.yaml  # edit it: it is rebuilt and served anew

Examples (once Ready; kubectl wait --for=condition=Ready lam --all):
${exampleLambdas.map((lambda) => `  ${lambda.name.padEnd(14)} ${runnerUrl}${lambda.path}`).join('\n')}

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
  ${s3 ? `S3          ${s3.url}  (access key ${s3.accessKey}, secret ${s3.secretKey}, bucket kublambda-artifacts)` : `artifacts   ${artifactsDir}  (a local directory; --s3 for an S3 server)`}
  registry    ${registry.url}  (user ${registry.username}, password ${registry.password}; nothing without them)
  logs        ${dir}

Running: api-controller and builder (they build each lambda into an asset in the artifact store and an image
in the registry, on the runner base image assembled here, and publish its route in Redis); a
runner process for each pod of the kublambda-runner Deployment (each serves every route, with
state tables in Redis), behind the runner port above, which stands in for the ingress; the
autoscaler, which sets that Deployment's replicas from the runners' load (at most
${LOCAL_SCALING.MAX_REPLICAS}, ${LOCAL_SCALING.TARGET_CONCURRENCY} requests in flight each); and for each lambda with watch triggers the
event-watcher its Deployment would run, with that Deployment's env and its ServiceAccount's
token. kwok makes the pods Ready and nothing runs in them: the processes run here, and the pods'
ports and logs lead to them (api-controller's and the builder's pods are stand-ins of the same
kind), so the CLI reaches them all through the API server.
Ctrl-C (or npm run down) stops everything; the state stays in ${dir} for the next start (--reset: afresh).
up in ${((Date.now() - started) / 1000).toFixed(1)} s. Ctrl-C stops everything.`);

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
  await rm(pidFile, { force: true });
}

/**
 * Applies examples/: each manifest as it is, each directory as `kublambda deploy` makes it
 * (its files, package.json included, with its lambda.yaml), server-side with the CLI's field
 * manager so a later deploy of the same directory takes over. Returns each lambda's path.
 */
async function applyExamples(kubeconfigPath: string): Promise<Array<{ name: string; path: string }>> {
  const lambdas = [];
  for (const entry of (await readdir(examples)).sort()) {
    const target = path.join(examples, entry);
    if (!(await stat(target)).isDirectory() && !/\.ya?ml$/.test(entry)) continue;
    lambdas.push(lambdaForDeploy(await readDeploySource(target), { env: [] }));
  }
  const applied = await kubectl(['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '-f', '-'], { kubeconfig: kubeconfigPath, input: lambdas.map((lambda) => JSON.stringify(lambda)).join('\n---\n') });
  if (applied.exitCode !== 0) throw new Error(`applying ${examples} failed: ${applied.stderr}`);
  return lambdas.map((lambda) => ({ name: lambda.metadata.name!, path: lambdaPath(lambda) }));
}

/**
 * The routes kept in the state directory name assets in the store the first start chose: a later
 * start with the other one would serve nothing, so it is refused with what to do.
 */
async function checkArtifactStoreKind(file: string, kind: 's3' | 'directory'): Promise<void> {
  // A directory from before this file was written has its S3 server's objects in s3/.
  const before = (await readFile(file, 'utf8').catch(() => undefined))?.trim() ?? (await stat(path.join(path.dirname(file), 's3')).then(() => 's3', () => undefined));
  if (before !== undefined && before !== kind) {
    console.error(`up: ${path.dirname(file)} keeps its artifacts in ${before === 's3' ? 'the S3 server (--s3)' : 'a local directory (no --s3)'}; start as before, or add --reset to start afresh with ${kind === 's3' ? 'the S3 server' : 'a local directory'}`);
    process.exit(2);
  }
  await writeFile(file, `${kind}\n`);
}
