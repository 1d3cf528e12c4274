import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { debianBinary } from './binaries.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface OciRegistry {
  /** host:port, as used in image references. */
  host: string;
  url: string;
  dir: string;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** The CNCF distribution registry (Debian's docker-registry) on a free loopback port, with manifest deletion enabled. */
export async function startRegistry(): Promise<OciRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-registry-'));
  let registry: ManagedProcess | undefined;
  const stop = async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const command = await debianBinary('docker-registry', 'docker-registry');
    const port = await withFreshPorts(1, async ([port]) => {
      registry = await startRegistryProcess(command, port!, dir);
      return port!;
    });
    return { host: `${HOST}:${port}`, url: `http://${HOST}:${port}`, dir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startRegistryProcess(command: string, port: number, dir: string): Promise<ManagedProcess> {
  const storage = path.join(dir, 'storage');
  const configFile = path.join(dir, 'config.yml');
  await mkdir(storage, { recursive: true });
  await writeFile(configFile, registryConfig(port, storage));
  return startManagedProcess({
    name: 'docker-registry',
    command,
    args: ['serve', configFile],
    logFile: path.join(dir, 'registry.log'),
    isReady: async () => (await fetch(`http://${HOST}:${port}/v2/`, { signal: AbortSignal.timeout(2_000) })).status === 200,
  });
}

function registryConfig(port: number, storage: string): string {
  return YAML.stringify({
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
    // The secret signs upload state; without one the registry makes up a random one and warns.
    http: { addr: `${HOST}:${port}`, secret: randomBytes(16).toString('hex') },
  });
}
