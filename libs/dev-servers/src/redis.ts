import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { debianBinary } from './binaries.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface RedisOptions {
  /** Append-only file persistence, so data survives a restart. Default false. */
  appendOnly?: boolean;
  /** Data and log directory; default a new temporary one, removed on stop. */
  dir?: string;
}

export interface RedisServer {
  host: string;
  port: number;
  url: string;
  dir: string;
  /** Stops and starts the server again on the same port, data directory and options. */
  restart(): Promise<void>;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** redis-server on a free loopback port, set up as BullMQ wants it (noeviction). */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const ownsDir = !options.dir;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kublambda-redis-')));
  let server: ManagedProcess | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server?.stop();
    if (ownsDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    await mkdir(dir, { recursive: true });
    const command = await debianBinary('redis-server', 'redis-server');
    const start = (port: number) => startRedisProcess(command, port, dir, options.appendOnly ?? false);
    const port = await withFreshPorts(1, async ([port]) => {
      server = await start(port!);
      return port!;
    });
    return {
      host: HOST,
      port,
      url: `redis://${HOST}:${port}`,
      dir,
      restart: async () => {
        await server?.stop();
        server = await start(port);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function startRedisProcess(command: string, port: number, dir: string, appendOnly: boolean): Promise<ManagedProcess> {
  return startManagedProcess({
    name: 'redis-server',
    command,
    args: [
      '--bind', HOST,
      '--port', String(port),
      '--dir', dir,
      '--save', '',
      '--appendonly', appendOnly ? 'yes' : 'no',
      // BullMQ refuses to run when Redis may evict its keys.
      '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no',
    ],
    logFile: path.join(dir, 'redis.log'),
    isReady: () => answersPing(port),
  });
}

async function answersPing(port: number): Promise<boolean> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Refused connections are expected while the server starts; unheard, ioredis would log each one.
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}
