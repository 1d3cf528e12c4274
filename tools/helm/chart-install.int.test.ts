// charts/kublambda installed for real with helm (built from tools/helm/go.mod), against a control
// plane of this file's own: etcd, kube-apiserver (RBAC on), kube-controller-manager,
// kube-scheduler and kwok with one fake node. Nothing runs in the pods: kwok only marks them
// Running and Ready with loopback IPs, so Deployments become Available and StatefulSets Ready
// without a container starting. Nothing here connects to a pod or a ClusterIP, nor to the
// external addresses in the values (redis.example.internal and the like).
// What this proves is what the API server and the controllers accept and do with the chart's
// objects: schema and admission (the restricted Pod Security Standard included), RBAC as the
// API server evaluates it, rollouts, volume binding, and helm's install, upgrade and uninstall.
// Whether the containers work is for the image and service tests.
//
// A control plane of its own rather than the suite's: the chart installs the Lambda CRD itself
// here (so "the CRD stays after uninstall" means something), and "nothing of the release is
// left" is checked across the whole cluster without other files' objects in the way.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KWOK_PORT_FORWARD_CRD, kubectl, startControlPlane, waitUntil, type ControlPlane, type KubectlResult } from '@kublambda/dev-servers';
import { chartPath, countByKind, helm, helmOk, parseManifest, setArgs, type KubeObject } from './helm.testing.ts';

const INSTANCE = 'app.kubernetes.io/instance';
const LAMBDA_CRD = 'customresourcedefinition.apiextensions.k8s.io/lambdas.kublambda.io';
// Rollouts on a busy CI machine (2 cores, many servers): generous, but a stuck one still fails.
const ROLLOUT_MS = 180_000;

const externalServices = {
  'redis.bundled': false,
  // Never contacted: nothing runs in the pods.
  'redis.external.address': 'redis.example.internal:6379',
  'redis.external.existingSecret': 'platform-redis-users',
  'objectStore.bundled': false,
  'objectStore.external.endpoint': 'https://s3.example.internal',
  'objectStore.external.existingSecret': 'platform-object-store',
  'imageBuilds.enabled': true,
  'imageBuilds.registry.url': 'https://registry.example.internal',
  'imageBuilds.registry.existingSecret': 'platform-registry',
};

let controlPlane: ControlPlane;
let tmp: string;
const cleanups: Array<() => Promise<unknown>> = [];

const unique = () => randomBytes(3).toString('hex');
const kube = (args: string[], input?: string): Promise<KubectlResult> => kubectl(args, { kubeconfig: controlPlane.kubeconfigPath, input });
const helmIn = (args: string[]) => helm(args, { kubeconfig: controlPlane.kubeconfigPath, home: path.join(tmp, 'helm'), timeoutMs: 360_000 });

async function kubeOk(args: string[], input?: string): Promise<string> {
  const result = await kube(args, input);
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

async function kubeItems(args: string[]): Promise<KubeObject[]> {
  return (JSON.parse(await kubeOk(['get', ...args, '-o', 'json'])) as { items: KubeObject[] }).items;
}

/** What helm said on stderr beyond its notes (INFO: the CRD is a link): warnings from it or the API server. */
const complaints = (stderr: string) => stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('level=INFO'));

const objectKey = (o: { kind: string; metadata: { name: string; namespace?: string } }) => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'kublambda-chart-install-'));
  // The Lambda CRD is left to the chart (crds/); the kwok PortForward CRD stands in because the
  // list may not be empty, and kwok installs it anyway.
  controlPlane = await startControlPlane({ kwok: true, crdFiles: [KWOK_PORT_FORWARD_CRD] });
}, 180_000);

afterAll(async () => {
  // Newest first (releases before their namespaces), every step even when one fails.
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('cleanup:', error));
  await controlPlane?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 180_000);

/**
 * A namespace under the restricted Pod Security Standard (enforced, and warned of, so a dry run
 * of a Deployment whose pods would be refused says so): the chart's pods must pass it.
 */
async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${unique()}`;
  await kubeOk(['create', 'namespace', name]);
  await kubeOk(['label', 'namespace', name, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted']);
  cleanups.push(() => kube(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']));
  return name;
}

/** `helm template` of the chart as it would be installed (no cluster: lookups find nothing). */
async function renderText(release: string, namespace: string, args: string[] = []): Promise<string> {
  return helmOk(['template', release, chartPath, '--namespace', namespace, ...args]);
}

async function render(release: string, namespace: string, args: string[] = []): Promise<KubeObject[]> {
  return parseManifest(await renderText(release, namespace, args));
}

interface DataClaim {
  name: string;
  statefulSet: string;
  storage: string;
  accessModes: string[];
  /** What the PVC asks; undefined: none, i.e. the cluster's default class. */
  storageClassName: string | undefined;
}

/** The PVCs the StatefulSet controller will make: <template>-<statefulset>-<ordinal>. */
function dataClaims(objects: KubeObject[]): DataClaim[] {
  return objects
    .filter((o) => o.kind === 'StatefulSet')
    .flatMap((set) =>
      (set.spec.volumeClaimTemplates ?? []).flatMap((template: any) =>
        Array.from({ length: set.spec.replicas ?? 1 }, (_, ordinal) => ({
          name: `${template.metadata.name}-${set.metadata.name}-${ordinal}`,
          statefulSet: set.metadata.name,
          storage: template.spec.resources.requests.storage,
          accessModes: template.spec.accessModes,
          storageClassName: template.spec.storageClassName,
        })),
      ),
    );
}

/**
 * There is no volume provisioner: a PersistentVolume per data PVC, a hostPath under the temp dir
 * (nothing writes there; no pod runs). This cluster has no StorageClass at all, so a PVC without
 * storageClassName keeps none (the DefaultStorageClass admission plugin has no default to set) and
 * kube-controller-manager binds it only to a PV whose storageClassName is "": the class given is
 * what the PVC asks, or "" when it asks none. claimRef pre-binds each PV to its PVC so that two
 * releases' claims of equal size never take each other's volume; the class is asserted after
 * binding.
 */
async function createDataVolumes(release: string, namespace: string, claims: DataClaim[]): Promise<string[]> {
  const names: string[] = [];
  for (const claim of claims) {
    const name = `${release}-${claim.name}`;
    const hostPath = path.join(tmp, 'volumes', name);
    await mkdir(hostPath, { recursive: true });
    const volume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, labels: { 'kublambda.io/test-volume-of': release } },
      spec: {
        capacity: { storage: claim.storage },
        accessModes: claim.accessModes,
        storageClassName: claim.storageClassName ?? '',
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: hostPath, type: 'Directory' },
        claimRef: { namespace, name: claim.name },
      },
    };
    await kubeOk(['apply', '-f', '-'], JSON.stringify(volume));
    cleanups.push(() => kube(['delete', 'persistentvolume', name, '--wait=false', '--ignore-not-found']));
    names.push(name);
  }
  return names;
}

interface Release {
  name: string;
  namespace: string;
  claims: DataClaim[];
  volumes: string[];
  installStderr: string;
  /** The objects `helm get manifest` lists. */
  manifest(): Promise<KubeObject[]>;
}

async function installRelease(prefix: string, args: string[] = []): Promise<Release> {
  const name = `${prefix}-${unique()}`;
  const namespace = await createNamespace(prefix);
  const claims = dataClaims(await render(name, namespace, args));
  const volumes = await createDataVolumes(name, namespace, claims);
  cleanups.push(() => helmIn(['uninstall', name, '--namespace', namespace, '--ignore-not-found']));
  const installed = await helmIn(['install', name, chartPath, '--namespace', namespace, '--timeout', '5m', ...args]);
  if (installed.exitCode !== 0) throw new Error(`helm install ${name} failed: ${installed.stderr}`);
  return {
    name,
    namespace,
    claims,
    volumes,
    installStderr: installed.stderr,
    manifest: async () => parseManifest(await helmOk(['get', 'manifest', name, '--namespace', namespace], { kubeconfig: controlPlane.kubeconfigPath, home: path.join(tmp, 'helm') })),
  };
}

function deploymentRolledOut(d: KubeObject): boolean {
  const status = (d.status ?? {}) as any;
  const replicas = d.spec.replicas ?? 1;
  const available = (status.conditions ?? []).some((c: any) => c.type === 'Available' && c.status === 'True');
  return (
    available &&
    status.observedGeneration === (d.metadata as any).generation &&
    status.updatedReplicas === replicas &&
    status.availableReplicas === replicas &&
    (status.replicas ?? 0) === replicas
  );
}

function statefulSetReady(s: KubeObject): boolean {
  const status = (s.status ?? {}) as any;
  const replicas = s.spec.replicas ?? 1;
  return status.observedGeneration === (s.metadata as any).generation && status.readyReplicas === replicas && status.updatedReplicas === replicas;
}

const rolloutSummary = (o: KubeObject) => `${o.kind}/${o.metadata.name} spec ${o.spec.replicas} status ${JSON.stringify(o.status)}`;

/** Every Deployment and StatefulSet of the release rolled out: Available, every replica updated and ready. */
async function waitForRollout(release: Release): Promise<KubeObject[]> {
  let seen: KubeObject[] = [];
  const pending = async () => (await kube(['get', 'pods', '-n', release.namespace, '-o', 'wide'])).stdout;
  return waitUntil(
    `the Deployments and StatefulSets of ${release.name} to roll out`,
    async () => {
      seen = await kubeItems(['deployments,statefulsets', '-n', release.namespace, '-l', `${INSTANCE}=${release.name}`]);
      return seen.length > 0 && seen.every((o) => (o.kind === 'Deployment' ? deploymentRolledOut(o) : statefulSetReady(o))) && seen;
    },
    { timeoutMs: ROLLOUT_MS, intervalMs: 500, describe: async () => `${seen.map(rolloutSummary).join('\n')}\n${await pending()}` },
  );
}

describe('helm template, every object applied with kubectl apply --dry-run=server', () => {
  let namespace: string;
  beforeAll(async () => {
    namespace = await createNamespace('dry-run');
  });

  // Server-side apply, as helm 4 installs: the API server checks every field (strict field
  // validation) and runs admission, and nothing is stored.
  // Every object counted by kind: a template that stops rendering (or renders twice) fails here.
  const shared = { CustomResourceDefinition: 1, ClusterRole: 1, ClusterRoleBinding: 1, Deployment: 4, NetworkPolicy: 1, PodDisruptionBudget: 1, Pod: 1 };
  it.each([
    {
      values: 'default values',
      args: [] as string[],
      // Roles: api-controller's leader election, the autoscaler's, helm test's (the builder has
      // one only with the Kaniko backend). Secrets: Redis users and ACL, env encryption, object
      // store keys. Services and ServiceAccounts: also for the bundled Redis and object store.
      kinds: { ...shared, ConfigMap: 2, Role: 4, RoleBinding: 3, Secret: 4, Service: 3, ServiceAccount: 7, StatefulSet: 2 },
      statefulSets: ['kublambda-object-store', 'kublambda-redis'],
    },
    {
      values: 'external Redis, S3 and registry',
      args: setArgs(externalServices),
      // Only the env encryption key is generated; the rest are the existingSecrets named.
      kinds: { ...shared, ConfigMap: 1, Role: 4, RoleBinding: 3, Secret: 1, Service: 1, ServiceAccount: 5 },
      statefulSets: [],
    },
  ])('with $values', async ({ args, kinds, statefulSets }) => {
    // helm template renders the test hooks too; --include-crds adds the Lambda CRD.
    const manifest = await renderText(`dry-${unique()}`, namespace, ['--include-crds', ...args]);
    const objects = parseManifest(manifest);
    expect(countByKind(objects)).toEqual(kinds);
    expect(objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort()).toEqual(['kublambda-api-controller', 'kublambda-autoscaler', 'kublambda-builder', 'kublambda-runner']);
    expect(objects.filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name).sort()).toEqual(statefulSets);
    expect(objects.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test').length).toBeGreaterThan(0);

    // A pod is admitted only once its ServiceAccount exists, which a dry run does not create
    // (helm test creates the hook's ServiceAccount first, by hook weight): those are made for real
    // in this namespace of the test's own.
    const serviceAccounts = objects.filter((o) => o.kind === 'ServiceAccount');
    await kubeOk(['apply', '--server-side', '--field-manager=helm', '--namespace', namespace, '-f', '-'], serviceAccounts.map((o) => JSON.stringify(o)).join('\n'));
    // helm's text as it is, not re-serialised: kubectl reads YAML as helm does.
    const applied = await kube(['apply', '--server-side', '--dry-run=server', '--field-manager=helm', '--namespace', namespace, '-f', '-', '-o', 'name'], manifest);
    expect({ exitCode: applied.exitCode, stderr: applied.stderr }).toEqual({ exitCode: 0, stderr: '' });
    // One line per object accepted: none skipped.
    expect(applied.stdout.trim().split('\n')).toHaveLength(objects.length);
  });
});

describe('helm install with default values', () => {
  let release: Release;
  let rolledOut: KubeObject[];
  beforeAll(async () => {
    release = await installRelease('kl');
    rolledOut = await waitForRollout(release);
  }, ROLLOUT_MS + 120_000);

  it('creates every object of helm get manifest, without a warning', async () => {
    expect(complaints(release.installStderr)).toEqual([]);
    const manifest = await release.manifest();
    expect(manifest.length).toBeGreaterThan(20);
    // Test hooks are kept for `helm test`; they are not part of the release's manifest.
    expect(manifest.filter((o) => o.metadata.annotations?.['helm.sh/hook'])).toEqual([]);
    const found = await kube(['get', '-f', '-', '--namespace', release.namespace, '-o', 'json', '--ignore-not-found'], manifest.map((o) => JSON.stringify(o)).join('\n'));
    expect(found.exitCode).toBe(0);
    // Every namespaced template names its namespace; names are unique per kind within the release.
    const existing = (JSON.parse(found.stdout) as { items: KubeObject[] }).items.map(objectKey);
    expect(existing.sort()).toEqual(manifest.map(objectKey).sort());
  });

  it('makes every Deployment Available with all its replicas', async () => {
    expect(rolledOut.filter((o) => o.kind === 'Deployment').map((d) => [d.metadata.name, (d.status as any).availableReplicas]).sort()).toEqual([
      ['kublambda-api-controller', 2],
      ['kublambda-autoscaler', 1],
      ['kublambda-builder', 1],
      // With the autoscaler on the chart leaves the count to it; Kubernetes' default is 1.
      ['kublambda-runner', 1],
    ]);
  });

  it("binds the bundled Redis's and object store's data PVCs to the volumes made for them, and their pods become Ready", async () => {
    // The chart leaves storageClassName out by default: the cluster's default class.
    expect(release.claims.map((c) => [c.name, c.storage, c.storageClassName]).sort()).toEqual([
      ['data-kublambda-object-store-0', '10Gi', undefined],
      ['data-kublambda-redis-0', '8Gi', undefined],
    ]);
    const claims = await kubeItems(['persistentvolumeclaims', '-n', release.namespace]);
    // Still no class on the PVCs as stored (no default class was there to fill it in), and each
    // bound to its volume.
    expect(claims.map((c) => ({ name: c.metadata.name, phase: (c.status as any).phase, volume: c.spec.volumeName, storageClassName: c.spec.storageClassName })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      release.claims
        .map((c) => ({ name: c.name, phase: 'Bound', volume: `${release.name}-${c.name}`, storageClassName: c.storageClassName }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );
    const volumes = await kubeItems(['persistentvolumes', '-l', `kublambda.io/test-volume-of=${release.name}`]);
    // "" is stored as no storageClassName at all.
    expect(volumes.map((v) => [v.metadata.name, (v.status as any).phase, v.spec.storageClassName ?? '']).sort()).toEqual(release.volumes.map((name) => [name, 'Bound', '']).sort());

    for (const set of ['kublambda-redis', 'kublambda-object-store']) {
      const pods = await kubeItems(['pods', '-n', release.namespace, '-l', `app.kubernetes.io/component=${set.replace('kublambda-', '')},${INSTANCE}=${release.name}`]);
      expect(pods.map((p) => ({
        name: p.metadata.name,
        ready: ((p.status as any).conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
        claim: (p.spec.volumes ?? []).find((v: any) => v.name === 'data')?.persistentVolumeClaim?.claimName,
      }))).toEqual([{ name: `${set}-0`, ready: true, claim: `data-${set}-0` }]);
    }
  });

  // The runner (lambdas run inside it) and everything that never calls the API server: no token.
  // The ServiceAccount admission plugin adds a projected token volume (kube-api-access-*) to
  // every pod that may mount one, so the pods as stored show it.
  it.each(['runner', 'builder', 'redis', 'object-store'])('gives the %s pods no ServiceAccount token', async (component) => {
    const serviceAccount = JSON.parse(await kubeOk(['get', 'serviceaccount', `kublambda-${component}`, '-n', release.namespace, '-o', 'json'])) as KubeObject;
    expect(serviceAccount.automountServiceAccountToken).toBe(false);
    const pods = await kubeItems(['pods', '-n', release.namespace, '-l', `app.kubernetes.io/component=${component},${INSTANCE}=${release.name}`]);
    expect(pods.length).toBeGreaterThan(0);
    for (const pod of pods) {
      expect({
        automount: pod.spec.automountServiceAccountToken,
        serviceAccount: pod.spec.serviceAccountName,
        projected: (pod.spec.volumes ?? []).filter((v: any) => v.projected).map((v: any) => v.name),
        mounts: [...(pod.spec.initContainers ?? []), ...pod.spec.containers].flatMap((c: any) => (c.volumeMounts ?? []).map((m: any) => m.mountPath)),
      }).toEqual({ automount: false, serviceAccount: `kublambda-${component}`, projected: [], mounts: expect.not.arrayContaining(['/var/run/secrets/kubernetes.io/serviceaccount']) });
    }
  });

  describe('RBAC, as the API server answers kubectl auth can-i for each ServiceAccount', () => {
    /** ask: kubectl auth can-i's arguments (verb, resource[/name], flags); where: the release's namespace, a lambda namespace, or all. */
    type Row = { ask: string; where: 'release' | 'other' | 'all'; expected: 'yes' | 'no' };
    let otherNamespace: string;
    beforeAll(async () => {
      // Where lambdas live: a namespace that is not the platform's.
      otherNamespace = await createNamespace('lambdas');
    });

    async function canI(serviceAccount: string, row: Row): Promise<string> {
      const where = row.where === 'all' ? ['--all-namespaces'] : ['--namespace', row.where === 'release' ? release.namespace : otherNamespace];
      const result = await kube(['auth', 'can-i', ...row.ask.split(' '), ...where, `--as=system:serviceaccount:${release.namespace}:${serviceAccount}`]);
      // yes: exit 0; no: exit 1; anything else is an error of the question itself.
      expect(result.stderr).toBe('');
      return result.stdout.trim();
    }

    const title = '$ask in $where namespace(s): $expected';

    it('leaves the runner with nothing beyond what every authenticated user may do', async () => {
      const list = async (serviceAccount: string) =>
        kubeOk(['auth', 'can-i', '--list', '--namespace', release.namespace, `--as=system:serviceaccount:${release.namespace}:${serviceAccount}`]);
      // A ServiceAccount of the namespace that nothing binds: the baseline (self reviews, discovery).
      await kubeOk(['create', 'serviceaccount', 'nothing-bound', '-n', release.namespace]);
      const baseline = await list('nothing-bound');
      const runner = await list('kublambda-runner');
      expect(runner).toBe(baseline);
      // Resources (the first column; the rest are non-resource URLs such as /healthz and /version):
      // reviews of its own access, and the cluster's trust bundles, as for every authenticated user.
      const resources = runner.split('\n').slice(1).map((line) => line.split(/\s+/)[0]).filter(Boolean);
      expect(resources.sort()).toEqual([
        'clustertrustbundles.certificates.k8s.io',
        'selfsubjectaccessreviews.authorization.k8s.io',
        'selfsubjectreviews.authentication.k8s.io',
        'selfsubjectrulesreviews.authorization.k8s.io',
      ]);
    });

    it.each<Row>([
      { ask: 'get pods', where: 'release', expected: 'no' },
      { ask: 'list secrets', where: 'release', expected: 'no' },
      { ask: 'list secrets', where: 'all', expected: 'no' },
      { ask: 'create lambdas.kublambda.io', where: 'other', expected: 'no' },
      { ask: 'get configmaps', where: 'release', expected: 'no' },
      { ask: 'get endpointslices.discovery.k8s.io', where: 'release', expected: 'no' },
    ])(`the runner can ${title}`, async (row) => {
      expect(await canI('kublambda-runner', row)).toBe(row.expected);
    });

    it.each<Row>([
      { ask: 'get secrets', where: 'release', expected: 'no' },
      { ask: 'list secrets', where: 'release', expected: 'no' },
      { ask: 'create secrets', where: 'release', expected: 'no' },
      { ask: 'get secrets', where: 'all', expected: 'no' },
      { ask: 'list secrets', where: 'all', expected: 'no' },
      { ask: 'create secrets', where: 'other', expected: 'no' },
      // The default (direct) backend talks to the registry alone: no Jobs, and no Role at all.
      { ask: 'create jobs.batch', where: 'release', expected: 'no' },
      { ask: 'create jobs.batch', where: 'other', expected: 'no' },
      { ask: 'create pods', where: 'release', expected: 'no' },
    ])(`the builder can ${title}`, async (row) => {
      expect(await canI('kublambda-builder', row)).toBe(row.expected);
    });

    it.each<Row>([
      { ask: 'update deployments.apps/kublambda-runner --subresource=scale', where: 'release', expected: 'yes' },
      { ask: 'patch deployments.apps/kublambda-runner --subresource=scale', where: 'release', expected: 'yes' },
      { ask: 'update deployments.apps/kublambda-runner --subresource=scale', where: 'other', expected: 'no' },
      { ask: 'update deployments.apps/kublambda-api-controller --subresource=scale', where: 'release', expected: 'no' },
      { ask: 'update deployments.apps --subresource=scale', where: 'all', expected: 'no' },
      { ask: 'get deployments.apps/kublambda-runner', where: 'release', expected: 'no' },
      { ask: 'update deployments.apps/kublambda-runner', where: 'release', expected: 'no' },
      { ask: 'get secrets', where: 'release', expected: 'no' },
      { ask: 'list endpointslices.discovery.k8s.io', where: 'release', expected: 'yes' },
      { ask: 'list endpointslices.discovery.k8s.io', where: 'other', expected: 'no' },
    ])(`the autoscaler can ${title}`, async (row) => {
      expect(await canI('kublambda-autoscaler', row)).toBe(row.expected);
    });

    describe('a developer bound to the kublambda-cli Role', () => {
      beforeAll(async () => {
        await kubeOk(['create', 'serviceaccount', 'developer', '-n', release.namespace]);
        await kubeOk(['create', 'rolebinding', 'developer-kublambda', '--role=kublambda-cli', `--serviceaccount=${release.namespace}:developer`, '-n', release.namespace]);
      });

      it.each<Row>([
        // kublambda invoke, events, state and builds: find the platform's pods, port-forward to them.
        { ask: 'list pods', where: 'release', expected: 'yes' },
        { ask: 'create pods --subresource=portforward', where: 'release', expected: 'yes' },
        { ask: 'get pods --subresource=portforward', where: 'release', expected: 'yes' },
        // kublambda logs: the runner pods' logs.
        { ask: 'get pods --subresource=log', where: 'release', expected: 'yes' },
        // Nothing that holds the stores' credentials, and nothing elsewhere.
        { ask: 'get secrets', where: 'release', expected: 'no' },
        { ask: 'list secrets', where: 'release', expected: 'no' },
        { ask: 'create pods --subresource=exec', where: 'release', expected: 'no' },
        { ask: 'delete pods', where: 'release', expected: 'no' },
        { ask: 'create pods --subresource=portforward', where: 'other', expected: 'no' },
      ])(`can ${title}`, async (row) => {
        expect(await canI('developer', row)).toBe(row.expected);
      });
    });

    // Secrets: get for env valueFrom in the lambdas' namespaces, and the watchers' Secrets it
    // manages; RBAC cannot narrow either by name or namespace. Exactly these verbs, so a
    // widening (deletecollection, a wildcard) fails here.
    const secretVerbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
    const grantedSecretVerbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
    it.each<Row>([
      ...secretVerbs.flatMap((verb) =>
        (['other', 'all'] as const).map((where): Row => ({ ask: `${verb} secrets`, where, expected: grantedSecretVerbs.includes(verb) ? 'yes' : 'no' })),
      ),
      { ask: 'create pods', where: 'other', expected: 'no' },
      { ask: 'create pods', where: 'release', expected: 'no' },
      { ask: 'create pods/any --subresource=exec', where: 'other', expected: 'no' },
      { ask: 'delete namespaces', where: 'all', expected: 'no' },
      { ask: 'get namespaces', where: 'all', expected: 'yes' },
      { ask: 'escalate roles.rbac.authorization.k8s.io', where: 'other', expected: 'no' },
      { ask: 'bind roles.rbac.authorization.k8s.io', where: 'other', expected: 'no' },
      { ask: 'bind clusterroles.rbac.authorization.k8s.io', where: 'all', expected: 'no' },
      { ask: 'escalate clusterroles.rbac.authorization.k8s.io', where: 'all', expected: 'no' },
      { ask: 'create clusterroles.rbac.authorization.k8s.io', where: 'all', expected: 'no' },
      { ask: 'create clusterrolebindings.rbac.authorization.k8s.io', where: 'all', expected: 'no' },
      { ask: 'impersonate serviceaccounts', where: 'other', expected: 'no' },
      { ask: 'create serviceaccounts/any --subresource=token', where: 'other', expected: 'no' },
      { ask: '* *', where: 'all', expected: 'no' },
      { ask: 'create roles.rbac.authorization.k8s.io', where: 'other', expected: 'yes' },
      // The watchers' Deployments, in any namespace (RBAC cannot narrow it either); a Deployment
      // may name any ServiceAccount of its namespace, which makes this grant a wide one.
      { ask: 'create deployments.apps', where: 'other', expected: 'yes' },
      { ask: 'create statefulsets.apps', where: 'other', expected: 'no' },
      { ask: 'create jobs.batch', where: 'other', expected: 'no' },
      { ask: 'update lambdas.kublambda.io --subresource=status', where: 'other', expected: 'yes' },
      { ask: 'delete lambdas.kublambda.io', where: 'other', expected: 'no' },
      { ask: 'update leases.coordination.k8s.io', where: 'release', expected: 'yes' },
      { ask: 'update leases.coordination.k8s.io', where: 'other', expected: 'no' },
    ])(`api-controller can ${title}`, async (row) => {
      expect(await canI('kublambda-api-controller', row)).toBe(row.expected);
    });
  });
});

// The Kaniko backend (imageBuilds.backend=kaniko) is the one that gives the builder a Role. Its
// RBAC objects as the chart renders them, applied into a namespace of their own: what the API
// server then answers is what an installed release's builder could do.
describe('RBAC of the builder with the Kaniko backend', () => {
  type Row = { ask: string; where: 'own' | 'other' | 'all'; expected: 'yes' | 'no' };
  let namespace: string;
  let otherNamespace: string;
  beforeAll(async () => {
    namespace = await createNamespace('kaniko');
    otherNamespace = await createNamespace('kaniko-other');
    const args = setArgs({ 'imageBuilds.enabled': true, 'imageBuilds.backend': 'kaniko', 'imageBuilds.registry.url': 'https://registry.example.internal', 'imageBuilds.registry.existingSecret': 'platform-registry' });
    const rbac = (await render(`kaniko-${unique()}`, namespace, ['--show-only', 'templates/builder.yaml', ...args])).filter((o) => o.kind !== 'Deployment');
    expect(rbac.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['Role/kublambda-builder', 'RoleBinding/kublambda-builder', 'ServiceAccount/kublambda-builder']);
    await kubeOk(['apply', '--namespace', namespace, '-f', '-'], rbac.map((o) => JSON.stringify(o)).join('\n'));
  });

  it.each<Row>([
    { ask: 'create jobs.batch', where: 'own', expected: 'yes' },
    { ask: 'delete jobs.batch', where: 'own', expected: 'yes' },
    { ask: 'create jobs.batch', where: 'other', expected: 'no' },
    { ask: 'create jobs.batch', where: 'all', expected: 'no' },
    { ask: 'get pods/log', where: 'own', expected: 'yes' },
    { ask: 'create pods', where: 'own', expected: 'no' },
    { ask: 'get secrets', where: 'own', expected: 'no' },
    { ask: 'list secrets', where: 'own', expected: 'no' },
    { ask: 'create secrets', where: 'own', expected: 'no' },
    { ask: 'get secrets', where: 'all', expected: 'no' },
  ])('the builder can $ask in $where namespace(s): $expected', async (row) => {
    const where = row.where === 'all' ? ['--all-namespaces'] : ['--namespace', row.where === 'own' ? namespace : otherNamespace];
    const result = await kube(['auth', 'can-i', ...row.ask.split(' '), ...where, `--as=system:serviceaccount:${namespace}:kublambda-builder`]);
    expect({ answer: result.stdout.trim(), stderr: result.stderr }).toEqual({ answer: row.expected, stderr: '' });
  });
});

describe('helm upgrade, then helm uninstall', () => {
  // Generated at install and kept through lookup (templates/secrets.yaml).
  const generatedSecrets = ['kublambda-env-encryption', 'kublambda-object-store', 'kublambda-redis-acl', 'kublambda-redis-users'];
  let release: Release;
  beforeAll(async () => {
    release = await installRelease('kl-life');
    await waitForRollout(release);
  }, ROLLOUT_MS + 120_000);

  async function secretData(): Promise<Record<string, Record<string, string>>> {
    const secrets = await kubeItems(['secrets', ...generatedSecrets, '-n', release.namespace]);
    return Object.fromEntries(secrets.map((s) => [s.metadata.name, s.data ?? {}]));
  }

  it("leaves the runner's replicas to the autoscaler", async () => {
    // As the autoscaler changes them: the scale subresource, as its own ServiceAccount.
    await kubeOk(['patch', 'deployment', 'kublambda-runner', '-n', release.namespace, '--subresource=scale', '--type=merge', '-p', '{"spec":{"replicas":4}}',
      `--as=system:serviceaccount:${release.namespace}:kublambda-autoscaler`]);
    const upgraded = await helmIn(['upgrade', release.name, chartPath, '--namespace', release.namespace, '--timeout', '5m', ...setArgs({ 'builder.concurrency': 3 })]);
    expect({ exitCode: upgraded.exitCode, complaints: complaints(upgraded.stderr) }).toEqual({ exitCode: 0, complaints: [] });
    const rolledOut = await waitForRollout(release);
    const runner = rolledOut.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kublambda-runner')!;
    expect([runner.spec.replicas, (runner.status as any).availableReplicas]).toEqual([4, 4]);
  }, ROLLOUT_MS + 60_000);

  it('changes what the new values say and keeps the generated Secrets', async () => {
    const before = await secretData();
    expect(Object.keys(before).sort()).toEqual(generatedSecrets);
    for (const data of Object.values(before)) expect(Object.values(data).every((value) => value.length > 0)).toBe(true);

    const upgraded = await helmIn(['upgrade', release.name, chartPath, '--namespace', release.namespace, '--timeout', '5m',
      ...setArgs({ 'runner.replicas': 3, 'autoscaler.enabled': false, 'http.ingressClassName': 'internal-nginx' })]);
    expect({ exitCode: upgraded.exitCode, complaints: complaints(upgraded.stderr) }).toEqual({ exitCode: 0, complaints: [] });

    const rolledOut = await waitForRollout(release);
    const deployment = (name: string) => rolledOut.find((o) => o.kind === 'Deployment' && o.metadata.name === name);
    expect(rolledOut.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort()).toEqual(['kublambda-api-controller', 'kublambda-builder', 'kublambda-runner']);
    expect([deployment('kublambda-runner')!.spec.replicas, (deployment('kublambda-runner')!.status as any).availableReplicas]).toEqual([3, 3]);
    const controllerEnv = deployment('kublambda-api-controller')!.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    expect(controllerEnv.find((e) => e.name === 'INGRESS_CLASS_NAME')?.value).toBe('internal-nginx');

    // The autoscaler, its RBAC and its pods: gone (pods once the garbage collector got to them).
    await waitUntil('the autoscaler and its pods to be gone', async () => {
      const left = await kubeItems(['deployments,replicasets,pods,serviceaccounts,roles,rolebindings', '-n', release.namespace, '-l', `app.kubernetes.io/component=autoscaler,${INSTANCE}=${release.name}`]);
      return left.length === 0;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    expect((await kube(['auth', 'can-i', 'update', 'deployments.apps/kublambda-runner', '--subresource=scale', '-n', release.namespace, `--as=system:serviceaccount:${release.namespace}:kublambda-autoscaler`])).stdout.trim()).toBe('no');

    expect(await secretData()).toEqual(before);
    const status = JSON.parse(await helmOk(['status', release.name, '--namespace', release.namespace, '-o', 'json'], { kubeconfig: controlPlane.kubeconfigPath, home: path.join(tmp, 'helm') }));
    expect(status.info.status).toBe('deployed');
  }, ROLLOUT_MS + 180_000);

  it('leaves nothing of the release but the Lambda CRD and the data PVCs', async () => {
    const manifest = await release.manifest();
    const uninstalled = await helmIn(['uninstall', release.name, '--namespace', release.namespace, '--timeout', '5m']);
    expect({ exitCode: uninstalled.exitCode, complaints: complaints(uninstalled.stderr) }).toEqual({ exitCode: 0, complaints: [] });

    // Whatever carries the release's label, in every namespace and cluster-wide, once the garbage
    // collector and the endpoint controllers removed what hangs off the deleted objects (a
    // leftover of any other kind fails at once below, without waiting).
    const dependents = ['Pod', 'ReplicaSet', 'ControllerRevision', 'EndpointSlice', 'Endpoints'];
    const listable = (await kubeOk(['api-resources', '--verbs=list', '-o', 'name'])).split('\n').filter(Boolean);
    let left: KubeObject[] = [];
    await waitUntil('the pods, ReplicaSets, ControllerRevisions and EndpointSlices of the release to go', async () => {
      left = await kubeItems([listable.join(','), '--all-namespaces', '-l', `${INSTANCE}=${release.name}`]);
      return !left.some((o) => dependents.includes(o.kind));
    }, { timeoutMs: 120_000, intervalMs: 1_000, describe: () => left.map(objectKey).join(', ') });
    // What stays, as the docs say: the data (PVCs are never deleted with their StatefulSet) ...
    expect(left.map((o) => [objectKey(o), (o.status as any).phase]).sort()).toEqual(
      release.claims.map((c) => [`PersistentVolumeClaim/${release.namespace}/${c.name}`, 'Bound']).sort(),
    );
    // ... and the CRD (helm never deletes crds/), so that no Lambda anywhere is lost with it.
    expect((await kube(['get', LAMBDA_CRD, '-o', 'name'])).stdout.trim()).toBe(LAMBDA_CRD);

    // Every object helm had installed, whatever labels it had.
    const stillThere = await kube(['get', '-f', '-', '--namespace', release.namespace, '--ignore-not-found', '-o', 'name'], manifest.map((o) => JSON.stringify(o)).join('\n'));
    expect({ exitCode: stillThere.exitCode, names: stillThere.stdout.trim() }).toEqual({ exitCode: 0, names: '' });
    // Cluster-scoped objects are named after the release.
    const clusterWide = await kubeOk(['get', 'clusterroles,clusterrolebindings', '-o', 'name']);
    expect(clusterWide.split('\n').filter((name) => name.includes(release.name))).toEqual([]);
    // helm's own record of the release.
    expect(await kubeItems(['secrets', '-n', release.namespace, '-l', `owner=helm,name=${release.name}`])).toEqual([]);
  }, 240_000);
});
