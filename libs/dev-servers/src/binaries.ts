import { access, constants, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const workspaceRoot = path.resolve(import.meta.dirname, '../../..');

/** Where built upstream binaries are cached: $KUBLAMBDA_CACHE or ~/.cache/kublambda. */
export function cacheDir(): string {
  return process.env.KUBLAMBDA_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'kublambda');
}

async function pinnedVersion(goModPath: string, modulePath: string): Promise<string> {
  const goMod = await readFile(path.join(workspaceRoot, goModPath), 'utf8');
  const match = goMod.match(new RegExp(`^\\s*(?:require\\s+)?${modulePath.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm'));
  if (!match?.[1]) throw new Error(`no version of ${modulePath} in ${goModPath}`);
  return match[1];
}

async function executable(file: string, howToGet: string): Promise<string> {
  try {
    await access(file, constants.X_OK);
    return file;
  } catch {
    throw new Error(`${file} is missing: ${howToGet}`);
  }
}

export async function kubernetesVersion(): Promise<string> {
  return pinnedVersion('tools/kube/go.mod', 'k8s.io/kubernetes');
}

/** kube-apiserver, kube-controller-manager, kube-scheduler or kubectl built by tools/kube/build.sh. */
export async function kubeBinary(name: 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kubectl'): Promise<string> {
  const file = path.join(cacheDir(), 'kube', await kubernetesVersion(), 'bin', name);
  return executable(file, 'build it with tools/kube/build.sh');
}

/** helm, built from the helm.sh/helm/v4 module pinned in tools/helm/go.mod by tools/helm/build.sh. */
export async function helmBinary(): Promise<string> {
  const version = await pinnedVersion('tools/helm/go.mod', 'helm.sh/helm/v4');
  return executable(path.join(cacheDir(), 'helm', version, 'bin', 'helm'), 'build it with tools/helm/build.sh');
}

/** etcd, versitygw or kwok, built from the module pinned in tools/servers/<name>/go.mod by tools/servers/build.sh. */
async function pinnedServerBinary(name: 'etcd' | 'versitygw' | 'kwok', modulePath: string): Promise<string> {
  const version = await pinnedVersion(`tools/servers/${name}/go.mod`, modulePath);
  return executable(path.join(cacheDir(), 'servers', `${name}@${version}`, name), 'build it with tools/servers/build.sh');
}

export const etcdBinary = () => pinnedServerBinary('etcd', 'go.etcd.io/etcd/server/v3');
export const versitygwBinary = () => pinnedServerBinary('versitygw', 'github.com/versity/versitygw');
/** kwok; its stages.yaml lies beside it. */
export const kwokBinary = () => pinnedServerBinary('kwok', 'sigs.k8s.io/kwok');

/** A server from a Debian package, found on PATH. */
export async function debianBinary(name: string, debianPackage: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (await access(file, constants.X_OK).then(() => true, () => false)) return file;
  }
  throw new Error(`${name} is not on PATH: install it with apt-get install ${debianPackage}`);
}
