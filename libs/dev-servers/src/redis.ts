import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { REDIS_USERS, aclLines, redisUrlFor, type RedisUser, type ServiceUser } from '@kublambda/redis-acl';
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
  /** REDIS_URL for one service: its own user and password (libs/redis-acl says what each may do). */
  urlFor(user: ServiceUser): string;
  /**
   * A user that may do everything, for tests that inspect Redis and the local all-in-one's
   * operator; never for a lambda or a platform service.
   */
  adminUrl: string;
  dir: string;
  /** Stops and starts the server again on the same port, data directory and options. */
  restart(): Promise<void>;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

/** What a test needs of any Redis the harness starts, single or cluster. */
export type RedisService = Pick<RedisServer, 'urlFor' | 'adminUrl' | 'stop'>;

const HOST = '127.0.0.1';

/**
 * redis-server on a free loopback port, set up as BullMQ wants it (noeviction), with a user per
 * service and the `default` user off: a connection without credentials can do nothing.
 */
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
    // Fresh passwords for every server; restart() keeps the file, so the users stay the same.
    const passwords = generatePasswords();
    const aclFile = path.join(dir, 'users.acl');
    await writeFile(aclFile, `${aclLines(passwords).join('\n')}\n`, { mode: 0o600 });
    const admin = { username: 'admin', password: passwords.admin };
    const start = (port: number) => startRedisProcess(command, { port, dir, aclFile, appendOnly: options.appendOnly ?? false, admin });
    const port = await withFreshPorts(1, async ([port]) => {
      server = await start(port!);
      return port!;
    });
    return {
      host: HOST,
      port,
      urlFor: (user) => redisUrlFor(user, passwords[user], HOST, port),
      adminUrl: redisUrlFor('admin', passwords.admin, HOST, port),
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

export function generatePasswords(): Record<RedisUser, string> {
  return Object.fromEntries(REDIS_USERS.map((user) => [user, randomBytes(24).toString('hex')])) as Record<RedisUser, string>;
}

interface Credentials {
  username: string;
  password: string;
}

export interface RedisProcessOptions {
  port: number;
  dir: string;
  aclFile: string;
  appendOnly: boolean;
  /** Used to tell when the server answers. */
  admin: Credentials;
  /** More redis-server arguments (cluster mode, say). */
  extraArgs?: string[];
}

export function startRedisProcess(command: string, options: RedisProcessOptions): Promise<ManagedProcess> {
  const { port, dir } = options;
  return startManagedProcess({
    name: 'redis-server',
    command,
    args: [
      '--bind', HOST,
      '--port', String(port),
      '--dir', dir,
      '--aclfile', options.aclFile,
      '--save', '',
      '--appendonly', options.appendOnly ? 'yes' : 'no',
      // BullMQ refuses to run when Redis may evict its keys.
      '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no',
      ...(options.extraArgs ?? []),
    ],
    logFile: path.join(dir, 'redis.log'),
    isReady: () => answersPing(port, options.admin),
  });
}

function answersPing(port: number, credentials: Credentials): Promise<boolean> {
  return withRedisNode(port, credentials, async (client) => (await client.ping()) === 'PONG');
}

/**
 * One connection to the redis-server at the port, for `use` only: no retries, no reconnects;
 * fails when the server does not answer.
 */
export async function withRedisNode<T>(port: number, credentials: Credentials, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: HOST, port, ...credentials, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Refused connections are expected while a server starts; unheard, ioredis would log each one.
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/**
 * Sends raw RESP command lines over a plain socket, as any program reaching the port could
 * (no client library, no credentials), and returns Redis's first reply line for each.
 */
export async function rawRedisReplies(port: number, commands: string[], host = HOST): Promise<string[]> {
  const socket = net.connect(port, host);
  await once(socket, 'connect');
  socket.write(commands.map((command) => `${command}\r\n`).join(''));
  let received = '';
  for await (const chunk of socket) {
    received += String(chunk);
    if (received.split('\r\n').length > commands.length) break;
  }
  socket.destroy();
  return received.split('\r\n').slice(0, commands.length);
}
