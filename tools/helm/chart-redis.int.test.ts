// The chart's bundled Redis as it renders (templates/redis.yaml and templates/secrets.yaml):
// its redis.conf, its ACL file and the passwords the chart generates, loaded into a real
// redis-server (Debian's) on loopback, started with the StatefulSet's arguments, its paths and
// address made this machine's; every setting in redis.conf is the chart's. Each service's REDIS_URL is built the way
// its Deployment builds it (the $(REDIS_PASSWORD) the pod's environment expands).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import YAML from 'yaml';
import { debianBinary, freePort, helmBinary, rawRedisReplies, startManagedProcess, type ManagedProcess } from '@kublambda/dev-servers';
import { ROUTES_KEY } from '@kublambda/route-table';

const chart = path.resolve(import.meta.dirname, '../../charts/kublambda');
const HOST = '127.0.0.1';

interface Manifest { kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string>; spec?: any }

let dir: string;
let port: number;
let server: ManagedProcess;
let passwords: Record<string, string>;
let urls: Record<string, string>;
let redisArgs: string[];
let pathsHere: Record<string, string>;
const clients: Redis[] = [];

function connect(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

beforeAll(async () => {
  const rendered = await execa(await helmBinary(), ['template', 'kublambda', chart, '--namespace', 'kublambda-system']);
  const objects = YAML.parseAllDocuments(rendered.stdout).map((document) => document.toJSON() as Manifest).filter(Boolean);
  const find = (kind: string, name: string) => {
    const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
    if (!found) throw new Error(`the chart rendered no ${kind} ${name}`);
    return found;
  };
  passwords = Object.fromEntries(Object.entries(find('Secret', 'kublambda-redis-users').data!).map(([user, value]) => [user, Buffer.from(value, 'base64').toString()]));
  dir = await mkdtemp(path.join(os.tmpdir(), 'chart-redis-'));
  port = await freePort();
  await writeFile(path.join(dir, 'redis.conf'), find('ConfigMap', 'kublambda-redis').data!['redis.conf']!);
  const container = find('StatefulSet', 'kublambda-redis').spec.template.spec.containers[0];
  expect(container.command.slice(0, 2)).toEqual(['redis-server', '/etc/redis/conf/redis.conf']);
  redisArgs = container.command.slice(1);
  pathsHere = { '/etc/redis/conf/redis.conf': path.join(dir, 'redis.conf'), '/data': dir, '/etc/redis/acl/users.acl': path.join(dir, 'users.acl') };
  await writeFile(path.join(dir, 'users.acl'), find('Secret', 'kublambda-redis-acl').stringData!['users.acl']!);
  // What each service's container gets: REDIS_URL with $(REDIS_PASSWORD) from the users Secret.
  urls = {};
  for (const [deployment, user] of [['kublambda-api-controller', 'api-controller'], ['kublambda-builder', 'builder'], ['kublambda-runner', 'runner']] as const) {
    const env = (find('Deployment', deployment).spec.template.spec.containers[0].env as Array<{ name: string; value?: string; valueFrom?: any }>);
    const secretRef = env.find((entry) => entry.name === 'REDIS_PASSWORD')!.valueFrom.secretKeyRef;
    expect(secretRef).toEqual({ name: 'kublambda-redis-users', key: user });
    const template = env.find((entry) => entry.name === 'REDIS_URL')!.value!;
    expect(template).toBe(`redis://${user}:$(REDIS_PASSWORD)@kublambda-redis.kublambda-system.svc:6379`);
    urls[user] = template.replace('$(REDIS_PASSWORD)', passwords[user]!).replace('kublambda-redis.kublambda-system.svc:6379', `${HOST}:${port}`);
  }
  server = await startManagedProcess({
    name: 'redis-server',
    command: await debianBinary('redis-server', 'redis-server'),
    args: [...redisArgs.map((arg) => pathsHere[arg] ?? arg), '--bind', HOST, '--port', String(port)],
    logFile: path.join(dir, 'redis.log'),
    isReady: async () => (await rawRedisReplies(port, ['PING']).catch(() => [''])).some((reply) => reply.includes('NOAUTH')),
  });
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the chart's bundled Redis", () => {
  it('keeps every write (AOF) and never evicts', async () => {
    const admin = connect(`redis://admin:${passwords.admin}@${HOST}:${port}`);
    const setting = async (name: string) => ((await admin.config('GET', name)) as string[])[1];
    expect({ appendonly: await setting('appendonly'), policy: await setting('maxmemory-policy'), maxmemory: await setting('maxmemory') })
      .toEqual({ appendonly: 'yes', policy: 'noeviction', maxmemory: String(1024 ** 3) });
  });

  it('refuses a connection without credentials', async () => {
    expect(await rawRedisReplies(port, ['PING', 'GET x'])).toEqual([expect.stringContaining('NOAUTH'), expect.stringContaining('NOAUTH')]);
  });

  it('gives each generated password to one user only', () => {
    expect(Object.keys(passwords).sort()).toEqual(['admin', 'api-controller', 'builder', 'runner']);
    expect(new Set(Object.values(passwords)).size).toBe(4);
    for (const password of Object.values(passwords)) expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it("lets each service's REDIS_URL in, with that service's rules", async () => {
    const runner = connect(urls.runner!);
    const controller = connect(urls['api-controller']!);
    const builder = connect(urls.builder!);
    expect(await controller.hset(ROUTES_KEY, 'shop/hello', '{}')).toBe(1);
    expect(await runner.hgetall(ROUTES_KEY)).toEqual({ 'shop/hello': '{}' });
    await expect(runner.hset(ROUTES_KEY, 'shop/evil', '{}')).rejects.toThrow(/NOPERM/);
    await expect(builder.hgetall(ROUTES_KEY)).rejects.toThrow(/NOPERM/);
    await expect(runner.keys('*')).rejects.toThrow(/NOPERM/);
  });

  it('refuses a wrong password', async () => {
    const wrong = connect(urls.runner!.replace(passwords.runner!, 'not-the-password'));
    await expect(wrong.ping()).rejects.toThrow(/WRONGPASS|invalid username-password/);
  });
});
