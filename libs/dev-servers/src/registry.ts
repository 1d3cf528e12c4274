import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import YAML from 'yaml';
import { debianBinary } from './binaries.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface OciRegistry {
  /** host:port, as used in image references. */
  host: string;
  url: string;
  dir: string;
  /** Every request needs these (HTTP basic authentication); the password is made for this server. */
  username: string;
  password: string;
  /** The Authorization header value for them. */
  authorization: string;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const USERNAME = 'kublambda';

/**
 * The CNCF distribution registry (Debian's docker-registry) on a free loopback port, with
 * manifest deletion enabled and every request behind a user and password (htpasswd): a lambda
 * that reaches the port must not be able to push an image the platform would run.
 */
export async function startRegistry(options: { /** Images kept here across restarts; default a new temporary directory, removed on stop. */ dir?: string } = {}): Promise<OciRegistry> {
  const ownsDir = !options.dir;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kublambda-registry-')));
  await mkdir(dir, { recursive: true });
  let registry: ManagedProcess | undefined;
  const stop = async () => {
    await registry?.stop();
    if (ownsDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const command = await debianBinary('docker-registry', 'docker-registry');
    const password = randomBytes(18).toString('base64url');
    const authorization = `Basic ${Buffer.from(`${USERNAME}:${password}`).toString('base64')}`;
    const htpasswd = path.join(dir, 'htpasswd');
    // The registry reads bcrypt entries only.
    await writeFile(htpasswd, `${USERNAME}:${await bcrypt.hash(password, 10)}\n`, { mode: 0o600 });
    const port = await withFreshPorts(1, async ([port]) => {
      registry = await startRegistryProcess(command, port!, dir, htpasswd, authorization);
      return port!;
    });
    return { host: `${HOST}:${port}`, url: `http://${HOST}:${port}`, dir, username: USERNAME, password, authorization, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startRegistryProcess(command: string, port: number, dir: string, htpasswd: string, authorization: string): Promise<ManagedProcess> {
  const storage = path.join(dir, 'storage');
  const configFile = path.join(dir, 'config.yml');
  await mkdir(storage, { recursive: true });
  await writeFile(configFile, registryConfig(port, storage, htpasswd));
  return startManagedProcess({
    name: 'docker-registry',
    command,
    args: ['serve', configFile],
    logFile: path.join(dir, 'registry.log'),
    isReady: async () => (await fetch(`http://${HOST}:${port}/v2/`, { headers: { authorization }, signal: AbortSignal.timeout(2_000) })).status === 200,
  });
}

function registryConfig(port: number, storage: string, htpasswd: string): string {
  return YAML.stringify({
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
    auth: { htpasswd: { realm: 'kublambda', path: htpasswd } },
    // The secret signs upload state; without one the registry makes up a random one and warns.
    http: { addr: `${HOST}:${port}`, secret: randomBytes(16).toString('hex') },
  });
}
