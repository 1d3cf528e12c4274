import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { lambdaCrdPath } from '@kublambda/crd-types';
import { etcdBinary, kubeBinary, kubernetesVersion, kwokBinary } from './binaries.ts';
import { httpsGet } from './https-probe.ts';
import { kubectl } from './kubectl.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { createControlPlanePki } from './pki.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface ControlPlaneOptions {
  /** Run kube-controller-manager (namespace deletion, garbage collection, service accounts). Default true. */
  controllerManager?: boolean;
  /** Run kube-scheduler. Default false, unless kwok runs. */
  scheduler?: boolean;
  /**
   * Run kwok with one fake node (and kube-scheduler): pods are scheduled onto it and become
   * Ready with loopback IPs, though nothing runs in them. Default false.
   */
  kwok?: boolean;
  /** CRD manifests installed once the API server is ready. Default: the Lambda CRD. */
  crdFiles?: string[];
  /** Where certificates, logs, the kubeconfig and etcd's data go, kept for the next start. Default: a new temporary directory (etcd's on tmpfs), removed on stop. */
  dir?: string;
}

export interface ControlPlane {
  kubernetesVersion: string;
  apiServerUrl: string;
  /** etcd's client URL (plain HTTP on loopback, no credentials): for tests that compact it. */
  etcdUrl: string;
  kubeconfigPath: string;
  dir: string;
  processes: ManagedProcess[];
  kubeConfig(): k8s.KubeConfig;
  stop(): Promise<void>;
}

const FIELD_MANAGER = 'kublambda-dev-servers';

/** A custom resource (plural.group) a test may install that kube-apiserver does not cache for watches. */
export const UNCACHED_TEST_RESOURCE = 'notes.uncached.kublambda.test';

/**
 * Starts etcd and kube-apiserver (plus kube-controller-manager by default) on free loopback
 * ports with freshly generated certificates and RBAC on, writes an admin kubeconfig and
 * installs the CRDs. Everything started is stopped by stop(), also when start-up fails.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const ownsDir = !options.dir;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kublambda-control-plane-')));
  await mkdir(dir, { recursive: true });
  // etcd fsyncs every write; on tmpfs that costs nothing, which keeps the suite fast. A
  // directory given by the caller keeps the cluster's objects for the next start (npm run up).
  const etcdDataDir = options.dir
    ? path.join(dir, 'etcd-data')
    : existsSync('/dev/shm')
      ? await mkdtemp(path.join('/dev/shm', 'kublambda-etcd-'))
      : path.join(dir, 'etcd-data');
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of [...processes].reverse()) await p.stop();
    if (!options.dir) await rm(etcdDataDir, { recursive: true, force: true });
    if (ownsDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const version = await kubernetesVersion();
    const pki = await createControlPlanePki();
    const file = (name: string) => path.join(dir, name);
    await Promise.all([
      writeFile(file('ca.crt'), pki.ca.certificate),
      writeFile(file('apiserver.crt'), pki.apiServer.certificate),
      writeFile(file('apiserver.key'), pki.apiServer.privateKey, { mode: 0o600 }),
      writeFile(file('sa.pub'), pki.serviceAccount.publicKey),
      writeFile(file('sa.key'), pki.serviceAccount.privateKey, { mode: 0o600 }),
    ]);

    const etcd = await withFreshPorts(2, ([clientPort, peerPort]) =>
      startEtcd(etcdDataDir, clientPort!, peerPort!, file('etcd.log')),
    );
    processes.push(etcd.process);

    const adminTls = { ca: pki.ca.certificate, cert: pki.admin.certificate, key: pki.admin.privateKey };
    const controllerManager = options.controllerManager ?? true;
    const apiServer = await withFreshPorts(1, async ([port]) => {
      const url = `https://127.0.0.1:${port}`;
      const process = await startManagedProcess({
        name: 'kube-apiserver',
        command: await kubeBinary('kube-apiserver'),
        args: [
          `--etcd-servers=${etcd.url}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${port}`,
          `--tls-cert-file=${file('apiserver.crt')}`,
          `--tls-private-key-file=${file('apiserver.key')}`,
          `--client-ca-file=${file('ca.crt')}`,
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${file('sa.pub')}`,
          `--service-account-signing-key-file=${file('sa.key')}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--authorization-mode=RBAC',
          '--allow-privileged=true',
          // TaintNodesByCondition taints new nodes not-ready until the node lifecycle controller,
          // which has nothing to do here, lifts it; kwok's node would never take a pod. Without
          // kube-controller-manager nothing creates the default ServiceAccounts that the
          // ServiceAccount admission plugin waits for.
          `--disable-admission-plugins=${['TaintNodesByCondition', ...(controllerManager ? [] : ['ServiceAccount'])].join(',')}`,
          '--endpoint-reconciler-type=none',
          // Logs, exec and port-forward go to the node's kubelet: kwok's server, at the node's
          // InternalIP (127.0.0.1) and daemonEndpoints port. Without --kubelet-certificate-authority
          // the API server does not verify the kubelet's serving certificate (kwok's is a test one).
          '--kubelet-preferred-address-types=InternalIP',
          // Resources of this group are served without the watch cache, straight from etcd, so a
          // test that compacts etcd sees what a watch from a compacted revision gets: 410 Gone.
          `--watch-cache-sizes=${UNCACHED_TEST_RESOURCE}#0`,
          '--v=1',
        ],
        logFile: file('kube-apiserver.log'),
        isReady: async () => (await httpsGet(`${url}/readyz`, adminTls)).status === 200,
        startTimeoutMs: 120_000,
      });
      return { process, url };
    });
    processes.push(apiServer.process);

    const kubeconfigPath = file('kubeconfig');
    await writeFile(kubeconfigPath, adminKubeconfig(apiServer.url, pki.ca.certificate, pki.admin), { mode: 0o600 });
    // Before the controller manager: its garbage collector learns of resource types at start and
    // then only every 30 s, so Lambda-owned objects would linger until then.
    await installCrds(kubeconfigPath, options.crdFiles ?? [lambdaCrdPath]);

    if (controllerManager) {
      processes.push(
        await startKubeComponent('kube-controller-manager', [
          `--kubeconfig=${kubeconfigPath}`,
          '--leader-elect=false',
          `--service-account-private-key-file=${file('sa.key')}`,
          `--root-ca-file=${file('ca.crt')}`,
          '--use-service-account-credentials=false',
          // Node IP allocation and node health have nothing to do without nodes.
          '--controllers=*,-node-ipam-controller,-node-lifecycle-controller',
        ], dir),
      );
    }
    if (options.scheduler || options.kwok) {
      processes.push(await startKubeComponent('kube-scheduler', [`--kubeconfig=${kubeconfigPath}`, '--leader-elect=false'], dir));
    }
    if (options.kwok) processes.push(await startKwok(kubeconfigPath, dir));

    const kubeConfig = () => {
      const config = new k8s.KubeConfig();
      config.loadFromFile(kubeconfigPath);
      return config;
    };

    return { kubernetesVersion: version, apiServerUrl: apiServer.url, etcdUrl: etcd.url, kubeconfigPath, dir, processes, kubeConfig, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startEtcd(dataDir: string, clientPort: number, peerPort: number, logFile: string) {
  const url = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const process = await startManagedProcess({
    name: 'etcd',
    command: await etcdBinary(),
    args: [
      '--name=default',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--log-level=warn',
    ],
    logFile,
    isReady: async () => {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      return response.ok && ((await response.json()) as { health?: string }).health === 'true';
    },
  });
  return { process, url };
}

/** kube-controller-manager or kube-scheduler, ready once its own /healthz answers. */
async function startKubeComponent(name: 'kube-controller-manager' | 'kube-scheduler', args: string[], dir: string) {
  return withFreshPorts(1, async ([port]) =>
    startManagedProcess({
      name,
      command: await kubeBinary(name),
      args: [...args, '--bind-address=127.0.0.1', `--secure-port=${port}`, '--v=1'],
      logFile: path.join(dir, `${name}.log`),
      // It serves with a self-signed certificate of its own; /healthz needs no credentials.
      isReady: async () => (await httpsGet(`https://127.0.0.1:${port}/healthz`, { insecure: true })).status === 200,
      startTimeoutMs: 60_000,
    }),
  );
}

/** The fake node's name; pods land on it. */
export const KWOK_NODE = 'kwok-node-0';

/** kwok's PortForward and Logs CRDs (kwok.x-k8s.io/v1alpha1), copied from sigs.k8s.io/kwok@v0.8.0 kustomize/crd/bases: the kwok controller does not install them. */
export const KWOK_PORT_FORWARD_CRD = path.resolve(import.meta.dirname, '../crds/kwok.x-k8s.io_portforwards.yaml');
export const KWOK_LOGS_CRD = path.resolve(import.meta.dirname, '../crds/kwok.x-k8s.io_logs.yaml');

/**
 * kwok managing one fake node, with every address it hands out on loopback (pod IPs from
 * 127.1.0.0/16, the node at 127.0.0.1): nothing in the cluster ever points off the machine.
 * kwok's server is the node's kubelet (127.0.0.1 at a free port, HTTPS with kwok's test
 * certificate, plain HTTP on the same port): the node's status names it, so the API server's
 * port-forward reaches it, PortForward objects (forwardPodPort) say where each pod port leads,
 * and Logs objects (servePodLogs) which local file is a pod's log.
 */
async function startKwok(kubeconfigPath: string, dir: string): Promise<ManagedProcess> {
  const binary = await kwokBinary();
  await installCrds(kubeconfigPath, [KWOK_PORT_FORWARD_CRD, KWOK_LOGS_CRD]);
  const kwok = await withFreshPorts(1, async ([port]) =>
    startManagedProcess({
      name: 'kwok',
      command: binary,
      args: [
        `--kubeconfig=${kubeconfigPath}`,
        `--config=${path.join(path.dirname(binary), 'stages.yaml')}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--cidr=127.1.0.1/16',
        '--node-ip=127.0.0.1',
        `--server-address=127.0.0.1:${port}`,
        // The port the node-initialize stage writes into status.daemonEndpoints (NodePort).
        `--node-port=${port}`,
        '--enable-crds=PortForward,Logs',
        '--node-lease-duration-seconds=0',
      ],
      logFile: path.join(dir, 'kwok.log'),
      isReady: async () => (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok,
      startTimeoutMs: 60_000,
    }),
  );
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: KWOK_NODE, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { 'kubernetes.io/hostname': KWOK_NODE, type: 'kwok' } },
  };
  const kubeconfig = { kubeconfig: kubeconfigPath };
  const applied = await kubectl(['apply', '-f', '-'], { ...kubeconfig, input: JSON.stringify(node) });
  if (applied.exitCode !== 0) throw new Error(`creating the kwok node: ${applied.stderr}`);
  const ready = await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `node/${KWOK_NODE}`], kubeconfig);
  if (ready.exitCode !== 0) throw new Error(`the kwok node did not become Ready: ${ready.stderr}`);
  return kwok;
}

function adminKubeconfig(server: string, caCertificate: string, admin: { certificate: string; privateKey: string }): string {
  const base64 = (pem: string) => Buffer.from(pem).toString('base64');
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kublambda-dev', cluster: { server, 'certificate-authority-data': base64(caCertificate) } }],
    users: [{ name: 'kublambda-admin', user: { 'client-certificate-data': base64(admin.certificate), 'client-key-data': base64(admin.privateKey) } }],
    contexts: [{ name: 'kublambda-dev', context: { cluster: 'kublambda-dev', user: 'kublambda-admin', namespace: 'default' } }],
    'current-context': 'kublambda-dev',
  });
}

/**
 * Server-side applies CRD manifests and waits until the API server serves them. kubectl does
 * the apply: client-node's typed serializer drops JSONSchemaProps fields it knows under other
 * names (default, enum, x-kubernetes-*) when handed a plain manifest.
 */
export async function installCrds(kubeconfigPath: string, crdFiles: string[]): Promise<void> {
  const kubeconfig = { kubeconfig: kubeconfigPath };
  const files = crdFiles.flatMap((file) => ['-f', file]);
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', `--field-manager=${FIELD_MANAGER}`, ...files], kubeconfig);
  if (applied.exitCode !== 0) throw new Error(`installing CRDs ${crdFiles.join(', ')} failed: ${applied.stderr}`);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=30s', ...files], kubeconfig);
  if (established.exitCode !== 0) throw new Error(`CRDs ${crdFiles.join(', ')} were not Established: ${established.stderr}`);
}
