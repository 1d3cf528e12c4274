import { watcherKeys } from '@kublambda/watch-triggers';
import { describe, expect, it } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_QUEUE, BUILD_QUEUE_PREFIX } from '@kublambda/build-queue';
import { ROUTE_CHANGE_SCRIPTS, ROUTE_CHANGES_CHANNEL, ROUTE_CLAIM_SCRIPTS, ROUTE_CLAIMS_BY_LAMBDA_KEY, ROUTE_CLAIMS_KEY, ROUTES_KEY, ROUTES_VERSION_KEY } from '@kublambda/route-table';
import { STATE_SCRIPTS, tableKeys } from '@kublambda/state-tables';
import { ACL_RULES, SERVICE_USERS, aclLines, chartAclRulesFile, redisUrlFor, type AccessRule, type ServiceUser } from './acl-rules.ts';
import { CHART_ACL_RULES_PATH } from './write-chart-rules.ts';

const root = path.resolve(import.meta.dirname, '../../..');

/** Redis's glob, for the patterns used here: `*` and `?` only (no `[...]`, no escapes). */
function globMatches(pattern: string, text: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[\\s\\S]*').replaceAll('?', '[\\s\\S]');
  return new RegExp(`^${regex}$`).test(text);
}

const mayRead = (rule: AccessRule, key: string) => [...rule.readWriteKeys, ...rule.readOnlyKeys].some((pattern) => globMatches(pattern, key));
const mayWrite = (rule: AccessRule, key: string) => rule.readWriteKeys.some((pattern) => globMatches(pattern, key));
const usersReading = (key: string) => SERVICE_USERS.filter((user) => mayRead(ACL_RULES[user], key));
const usersWriting = (key: string) => SERVICE_USERS.filter((user) => mayWrite(ACL_RULES[user], key));

/** The commands a Lua script calls by name. */
function commandsCalledBy(script: string): string[] {
  return [...script.matchAll(/(?:rcall|redis\.p?call)\(\s*['"]([A-Za-z]+)['"]/g)].map((match) => match[1]!.toLowerCase());
}

async function bullmqScripts(): Promise<string[]> {
  const commands = path.join(path.dirname(fileURLToPath(import.meta.resolve('bullmq'))), 'commands');
  // The scripts and the pieces they include (commands/includes).
  const files = (await readdir(commands, { recursive: true })).filter((file) => file.endsWith('.lua'));
  expect(files.filter((file) => file.startsWith('includes')).length).toBeGreaterThan(10);
  return Promise.all(files.map((file) => readFile(path.join(commands, file), 'utf8')));
}

/** Every `kublambda:...` string literal in the sources of the apps and libs: the key families in use. */
async function kublambdaLiterals(): Promise<Array<{ file: string; literal: string }>> {
  const found: Array<{ file: string; literal: string }> = [];
  for (const top of ['apps', 'libs']) {
    for (const entry of await readdir(path.join(root, top), { recursive: true, withFileTypes: true })) {
      const file = path.join(entry.parentPath, entry.name);
      if (!entry.isFile() || !entry.name.endsWith('.ts') || /\.test\.ts$|\.testing\.ts$/.test(entry.name) || file.includes('node_modules')) continue;
      for (const match of (await readFile(file, 'utf8')).matchAll(/['"`](kublambda:[^\s'"`]*)['"`]/g)) found.push({ file: path.relative(root, file), literal: match[1]! });
    }
  }
  return found;
}

describe('the Redis users', () => {
  const state = tableKeys('shop', 'orders');
  const stateKeys = [state.entryPrefix + 'order/1', state.index, state.expiries, state.version];
  const watcher = watcherKeys({ namespace: 'shop', name: 'on-order' });
  const queueKeys = ['wait', 'active', 'id', 'events', 'meta', 'marker', 'stalled-check', 'default/hello/abc'].map((suffix) => `${BUILD_QUEUE_PREFIX}:${BUILD_QUEUE}:${suffix}`);

  it.each<[string, string[], ServiceUser[], ServiceUser[]]>([
    // key family, example keys, readers, writers
    ['route records and their version', [ROUTES_KEY, ROUTES_VERSION_KEY], ['runner', 'api-controller'], ['api-controller']],
    ['route claims', [ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY], ['api-controller'], ['api-controller']],
    ['state tables', stateKeys, ['runner', 'api-controller'], ['runner', 'api-controller']],
    ['the build queue', queueKeys, ['api-controller', 'builder'], ['api-controller', 'builder']],
    // Each watcher reads and writes its own through a user of its own (watcher-users.ts).
    ['event-watcher checkpoints and dead letters', [watcher.lease, watcher.objects('abc'), watcher.deadLetters], ['api-controller'], ['api-controller']],
  ])('%s: read by exactly the users that need them, written by fewer', (_family, keys, readers, writers) => {
    for (const key of keys) {
      expect({ key, readers: usersReading(key) }).toEqual({ key, readers });
      expect({ key, writers: usersWriting(key) }).toEqual({ key, writers });
    }
  });

  it('gives the runner no write access to routes and nothing of the build queue or the route claims', () => {
    const runner = ACL_RULES.runner;
    expect(mayWrite(runner, ROUTES_KEY)).toBe(false);
    expect(mayWrite(runner, ROUTES_VERSION_KEY)).toBe(false);
    for (const key of [...queueKeys, `${BUILD_QUEUE_PREFIX}:anything`, ROUTE_CLAIMS_KEY, ROUTE_CLAIMS_BY_LAMBDA_KEY]) expect({ key, readable: mayRead(runner, key) }).toEqual({ key, readable: false });
    expect(runner.commands).not.toContain('publish');
    expect(runner.commands).not.toContain('keys');
  });

  it('lets only api-controller announce route changes, and the runner hear them', () => {
    expect(SERVICE_USERS.filter((user) => ACL_RULES[user].channels.includes(ROUTE_CHANGES_CHANNEL))).toEqual(['runner', 'api-controller']);
    expect(SERVICE_USERS.filter((user) => ACL_RULES[user].commands.includes('publish'))).toEqual(['api-controller']);
    expect(SERVICE_USERS.filter((user) => ACL_RULES[user].commands.includes('subscribe'))).toEqual(['runner']);
  });

  it('covers every kublambda: key and channel the code names', async () => {
    const literals = await kublambdaLiterals();
    expect(literals.map(({ literal }) => literal)).toEqual(expect.arrayContaining([ROUTES_KEY, ROUTE_CHANGES_CHANNEL, ROUTE_CLAIMS_KEY]));
    // A family named in code but granted to no service would be refused to all of them.
    const uncovered = literals.filter(({ literal }) => {
      const asKey = `${literal}${literal.endsWith(':') ? 'x' : ''}`;
      return usersReading(asKey).length === 0 && !SERVICE_USERS.some((user) => ACL_RULES[user].channels.includes(literal));
    });
    expect(uncovered).toEqual([]);
  });

  it.each<[string, ServiceUser[], () => Promise<string[]>]>([
    ['the state-table scripts', ['runner', 'api-controller'], async () => STATE_SCRIPTS],
    ['the route-claim scripts', ['api-controller'], async () => ROUTE_CLAIM_SCRIPTS],
    ['the route-change script', ['api-controller'], async () => ROUTE_CHANGE_SCRIPTS],
    ["BullMQ's scripts", ['api-controller', 'builder'], bullmqScripts],
  ])('grants every command %s call to the users that run them', async (_scripts, users, scripts) => {
    const called = [...new Set((await scripts()).flatMap(commandsCalledBy))].sort();
    expect(called.length).toBeGreaterThan(2);
    for (const user of users) {
      expect({ user, missing: called.filter((command) => !ACL_RULES[user].commands.includes(command)) }).toEqual({ user, missing: [] });
    }
  });

  it('gives no service commands that reach beyond its keys', () => {
    // Commands without key arguments act on everything: listing every key, or wiping it.
    const global = ['keys', 'scan', 'flushall', 'flushdb', 'config', 'acl', 'debug', 'shutdown', 'monitor', 'client', 'client|list', 'client|kill', 'script', 'script|flush', 'function', 'swapdb', 'move', 'psubscribe'];
    for (const user of SERVICE_USERS) {
      expect({ user, granted: ACL_RULES[user].commands.filter((command) => global.includes(command)) }).toEqual({ user, granted: [] });
    }
  });
});

describe('aclLines', () => {
  const passwords = { runner: 'r1', 'api-controller': 'a1', builder: 'b1', cli: 'c1', admin: 'x1' };

  it('turns the default user off and writes one line per user', () => {
    const lines = aclLines(passwords);
    expect(lines[0]).toBe('user default off resetpass ~* &* +@all');
    expect(lines.map((line) => line.split(' ')[1])).toEqual(['default', 'runner', 'api-controller', 'builder', 'admin']);
    expect(lines.at(-1)).toBe('user admin on >x1 ~* &* +@all');
  });

  it("writes the runner's rules: routes read-only, its channel, nothing but its commands", () => {
    const runner = aclLines(passwords).find((line) => line.startsWith('user runner '))!;
    expect(runner).toMatch(/^user runner on resetpass >r1 resetkeys resetchannels ~kublambda:state:\* %R~kublambda:\{routes\} %R~kublambda:\{routes\}:version &kublambda:route-changes -@all \+info \+cluster\|slots \+cluster\|info \+hget \+hgetall \+get \+multi \+exec \+subscribe /);
    expect(runner.split(' ').filter((word) => word.startsWith('+')).length).toBe(new Set(ACL_RULES.runner.commands).size);
  });

  it.each([['empty', ''], ['with a space', 'a b'], ['with a newline', 'a\nuser evil on nopass ~* +@all']])('refuses a password %s', (_what, password) => {
    expect(() => aclLines({ ...passwords, builder: password })).toThrow('the Redis password for user "builder" must be printable ASCII without spaces, and not empty');
  });
});

describe('the chart\'s copy of the rules', () => {
  it('is what ACL_RULES gives (run node libs/redis-acl/src/write-chart-rules.ts when it is not)', async () => {
    expect(await readFile(CHART_ACL_RULES_PATH, 'utf8')).toBe(chartAclRulesFile());
  });

  it('makes, with a password put after each user, the same lines as aclLines', () => {
    const passwords = { runner: 'r1', 'api-controller': 'a1', builder: 'b1', cli: 'c1', admin: 'x1' };
    const fromChart = chartAclRulesFile().trim().split('\n').filter((line) => !line.startsWith('#')).map((line) => {
      const user = line.slice(0, line.indexOf(' ')) as ServiceUser;
      return `user ${user} on resetpass >${passwords[user]} ${line.slice(user.length + 1)}`;
    });
    expect(fromChart).toEqual(aclLines(passwords).slice(1, -1));
  });
});

describe('redisUrlFor', () => {
  it('puts the user and the password, escaped, into the URL', () => {
    expect(redisUrlFor('api-controller', 'p@ss/word', '127.0.0.1', 6379)).toBe('redis://api-controller:p%40ss%2Fword@127.0.0.1:6379');
    const parsed = new URL(redisUrlFor('runner', 'p@ss/word', '127.0.0.1', 6379));
    expect([decodeURIComponent(parsed.username), decodeURIComponent(parsed.password)]).toEqual(['runner', 'p@ss/word']);
  });
});
