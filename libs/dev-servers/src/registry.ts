import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { debianBinary } from './binaries.ts';
import { startManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface OciRegistry {
  /** host:port, as used in image references. */
  host: string;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/** The CNCF distribution registry (Debian's docker-registry) on a free loopback port, with manifest deletion enabled. */
export async function startRegistry(): Promise<OciRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-registry-'));
  const storage = path.join(dir, 'storage');
  await mkdir(storage);
  const command = await debianBinary('docker-registry', 'docker-registry');
  try {
    const { process, port } = await withFreshPorts(1, async ([port]) => {
      const config = path.join(dir, 'config.yml');
      await writeFile(
        config,
        YAML.stringify({
          version: 0.1,
          log: { level: 'warn', accesslog: { disabled: true } },
          storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
          http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
        }),
      );
      const process = await startManagedProcess({
        name: 'docker-registry',
        command,
        args: ['serve', config],
        logFile: path.join(dir, 'registry.log'),
        isReady: async () => (await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(2_000) })).status === 200,
      });
      return { process, port: port! };
    });
    return {
      host: `127.0.0.1:${port}`,
      url: `http://127.0.0.1:${port}`,
      dir,
      stop: async () => {
        await process.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
