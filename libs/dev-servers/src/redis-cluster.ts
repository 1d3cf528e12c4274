import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Redis } from 'ioredis';
import { aclLines, type RedisUser, type ServiceUser } from '@kublambda/redis-acl';
import { debianBinary } from './binaries.ts';
import type { ManagedProcess } from './managed-process.ts';
import { generatePasswords, startRedis, startRedisProcess, withRedisNode, type RedisService } from './redis.ts';
import { waitUntil } from './wait-until.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface RedisClusterOptions {
  /** Default 3, the fewest a Redis Cluster accepts. */
  masters?: number;
  /** Default 1: each master has a replica that takes over when it fails. */
  replicasPerMaster?: number;
  /** How long a node may be unreachable before the others fail it over (cluster-node-timeout); default 1000 ms. */
  nodeTimeoutMs?: number;
  /** Append-only file persistence on every node, fsync'd with every write. Default false. */
  appendOnly?: boolean;
}

export interface RedisClusterNode {
  port: number;
  /** Whether its process runs (a killed node is down until start()). */
  readonly running: boolean;
  /** SIGKILL, as a crash: no shutdown, no last save. */
  kill(): Promise<void>;
  /** Starts it again on its port and data directory; it rejoins the cluster from its nodes.conf. */
  start(): Promise<void>;
}

export interface RedisClusterServer {
  host: string;
  nodes: RedisClusterNode[];
  /** REDIS_URL for one service: a redis+cluster:// URL with every node as a seed and the service's user. */
  urlFor(user: ServiceUser): string;
  /** A user that may do everything, for tests; never for a lambda or a platform service. */
  adminUrl: string;
  dir: string;
  /** The node that is the master of the key's slot now. */
  masterOf(key: string): Promise<RedisClusterNode>;
  /** Until every running node reports cluster_state:ok, every replica is in sync and every slot has a running master. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const SLOTS = 16384;

/**
 * A Redis Cluster on loopback: `masters` masters with `replicasPerMaster` replicas each, every
 * node with the platform's users (the same ACL file: a cluster does not share users between
 * nodes), replicas authenticating to their masters as `admin`.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterServer> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-redis-cluster-'));
  const processes = new Map<number, ManagedProcess>();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...processes.values()].map((process) => process.stop()));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const command = await debianBinary('redis-server', 'redis-server');
    const passwords = generatePasswords();
    const aclFile = path.join(dir, 'users.acl');
    await writeFile(aclFile, `${aclLines(passwords).join('\n')}\n`, { mode: 0o600 });
    const admin = { username: 'admin', password: passwords.admin };
    const count = masters * (1 + replicas);

    const startNode = async (port: number, busPort: number) => {
      const nodeDir = path.join(dir, String(port));
      await mkdir(nodeDir, { recursive: true });
      const process = await startRedisProcess(command, {
        port,
        dir: nodeDir,
        aclFile,
        appendOnly: options.appendOnly ?? false,
        admin,
        extraArgs: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(busPort),
          '--cluster-node-timeout', String(nodeTimeoutMs),
          '--masteruser', 'admin',
          '--masterauth', passwords.admin,
          // A new replica syncs at once rather than after the 5 s Redis waits for more to join.
          '--repl-diskless-sync-delay', '0',
          ...(options.appendOnly ? ['--appendfsync', 'always'] : []),
        ],
      });
      processes.set(port, process);
    };

    // A port and a cluster bus port per node.
    const ports = await withFreshPorts(count * 2, async (fresh) => {
      const pairs = Array.from({ length: count }, (_, i) => [fresh[2 * i]!, fresh[2 * i + 1]!] as const);
      try {
        await Promise.all(pairs.map(([port, bus]) => startNode(port, bus)));
      } catch (error) {
        await Promise.all([...processes.values()].map((process) => process.stop()));
        processes.clear();
        throw error;
      }
      return pairs;
    });

    const nodes: RedisClusterNode[] = ports.map(([port, bus]) => ({
      port,
      get running() {
        return processes.has(port);
      },
      kill: async () => {
        await processes.get(port)?.kill();
        processes.delete(port);
      },
      start: async () => {
        if (!processes.has(port)) await startNode(port, bus);
      },
    }));

    const redisCli = await debianBinary('redis-cli', 'redis-server');
    await execa(redisCli, [
      '--cluster', 'create', ...ports.map(([port]) => `${HOST}:${port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes',
      '--user', 'admin', '--pass', passwords.admin, '--no-auth-warning',
    ]);

    const seeds = ports.map(([port]) => `${HOST}:${port}`).join(',');
    const urlFor = (user: RedisUser) => `redis+cluster://${encodeURIComponent(user)}:${encodeURIComponent(passwords[user])}@${seeds}`;
    /** Asks a running node, as admin. */
    const askCluster = <T>(use: (redis: Redis) => Promise<T>): Promise<T> => {
      const asker = nodes.find((node) => node.running);
      if (!asker) throw new Error('no node of the Redis Cluster is running');
      return withRedisNode(asker.port, admin, use);
    };
    const slotMasters = async (): Promise<Map<number, number>> => {
      // slot -> port of its master.
      const ranges = (await askCluster((redis) => redis.call('CLUSTER', 'SLOTS'))) as Array<[number, number, [string, number]]>;
      const owners = new Map<number, number>();
      for (const [from, to, [, port]] of ranges) for (let slot = from; slot <= to; slot++) owners.set(slot, Number(port));
      return owners;
    };
    const waitUntilHealthy = async (timeoutMs = 30_000) => {
      await waitUntil(
        'the Redis Cluster to serve every slot from a running master',
        async () => {
          try {
            for (const node of nodes.filter((n) => n.running)) {
              const healthy = await withRedisNode(node.port, admin, async (redis) => {
                const info = String(await redis.call('CLUSTER', 'INFO'));
                // A replica takes over only once it has synced with its master.
                const replication = String(await redis.call('INFO', 'replication'));
                return info.includes('cluster_state:ok') && (!replication.includes('role:slave') || replication.includes('master_link_status:up'));
              });
              if (!healthy) return false;
            }
            const owners = await slotMasters();
            if (owners.size !== SLOTS) return false;
            const running = new Set(nodes.filter((n) => n.running).map((n) => n.port));
            return [...owners.values()].every((port) => running.has(port));
          } catch {
            return false;
          }
        },
        { timeoutMs },
      );
    };
    await waitUntilHealthy();

    return {
      host: HOST,
      nodes,
      urlFor,
      adminUrl: urlFor('admin'),
      dir,
      masterOf: async (key) => {
        const slot = Number(await askCluster((redis) => redis.call('CLUSTER', 'KEYSLOT', key)));
        const port = (await slotMasters()).get(slot);
        const node = nodes.find((n) => n.port === port);
        if (!node) throw new Error(`no master serves the slot of ${key}`);
        return node;
      },
      waitUntilHealthy,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Both engines a suite that touches Redis runs on, for `describe.each`: a single redis-server,
 * and a three-master cluster (without replicas: failover is tested where it matters).
 */
export const REDIS_ENGINES: Array<[engine: string, start: () => Promise<RedisService>]> = [
  ['a single Redis', () => startRedis()],
  ['a Redis Cluster', () => startRedisCluster({ replicasPerMaster: 0 })],
];
