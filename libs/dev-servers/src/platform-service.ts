import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { networkEnv } from '@kublambda/config';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';

const workspaceRoot = path.resolve(import.meta.dirname, '../../..');

export type PlatformApp = 'api-controller' | 'builder' | 'runner' | 'event-watcher' | 'autoscaler';

/** The log line each service writes once it is serving. */
const readyMessages: Record<PlatformApp, string> = {
  'api-controller': 'starting',
  builder: 'building',
  runner: 'listening',
  'event-watcher': 'watching',
  autoscaler: 'scaling',
};

export interface PlatformServiceOptions {
  logDir?: string;
  name?: string;
  /** Runs dist/apps/<app>/main.mjs, as its image does, rather than the source (tools/build/bundle-app.ts makes it). */
  bundled?: boolean;
  /** Also write <name>.cri.log, in the format kwok serves as a stand-in pod's log (ManagedProcess.criLogFile). */
  criLog?: boolean;
}

/**
 * Runs one of the platform's services as a local process (no kubelet here), with the given
 * environment plus what reaching the network needs, nothing else of the test runner's. Ready
 * once it logs its ready message.
 */
export async function startPlatformService(app: PlatformApp, env: Record<string, string>, options: PlatformServiceOptions = {}): Promise<ManagedProcess> {
  const logDir = options.logDir ?? (await mkdtemp(path.join(os.tmpdir(), `kublambda-${app}-`)));
  const name = options.name ?? app;
  const logFile = path.join(logDir, `${name}.log`);
  const ready = `"message":"${readyMessages[app]}"`;
  return startManagedProcess({
    name,
    command: process.execPath,
    args: [options.bundled ? path.join(workspaceRoot, 'dist/apps', app, 'main.mjs') : path.join(workspaceRoot, 'apps', app, 'src/main.ts')],
    env: { HOME: os.homedir(), ...networkEnv(process.env), ...env },
    cwd: workspaceRoot,
    logFile,
    criLogFile: options.criLog ? path.join(logDir, `${name}.cri.log`) : undefined,
    isReady: async () => (await readFile(logFile, 'utf8')).includes(ready),
    startTimeoutMs: 30_000,
  });
}
