import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { debianBinary } from './binaries.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface RedisOptions {
  /** Append-only file persistence, so data survives a restart. Default false. */
  appendOnly?: boolean;
  /** Data directory; default a new temporary one, removed on stop. */
  dir?: string;
}

export interface RedisServer {
  host: string;
  port: number;
  url: string;
  dir: string;
  /** Stops and starts the server again on the same port and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** redis-server on a free loopback port, set up as BullMQ wants it (noeviction). */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kublambda-redis-')));
  const command = await debianBinary('redis-server', 'redis-server');
  const start = (port: number) =>
    startManagedProcess({
      name: 'redis-server',
      command,
      args: [
        '--bind', '127.0.0.1',
        '--port', String(port),
        '--dir', dir,
        '--save', '',
        '--appendonly', options.appendOnly ? 'yes' : 'no',
        '--maxmemory-policy', 'noeviction',
        '--daemonize', 'no',
      ],
      logFile: path.join(dir, 'redis.log'),
      isReady: () => answersPing(port),
    });

  let process: ManagedProcess | undefined;
  const port = await withFreshPorts(1, async ([port]) => {
    process = await start(port!);
    return port!;
  });
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    restart: async () => {
      await process?.stop();
      process = await start(port);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await process?.stop();
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function answersPing(port: number): Promise<boolean> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}
