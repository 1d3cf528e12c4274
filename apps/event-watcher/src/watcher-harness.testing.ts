// The event-watcher as a local process (pods cannot run here: no kubelet), wired to the real
// test API server and a real Redis, delivering to a server of the test's own that stands in
// for the runner. Reused by the end-to-end tests.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { freePort, logTail, startPlatformService, waitUntil, type ManagedProcess, type RedisServer } from '@kublambda/dev-servers';
import { watcherAclSetUserArgs } from '@kublambda/redis-acl';
import { watchTriggerId, watcherRedisUser, type LambdaName, type ResolvedWatchTrigger, type WatcherConfig } from '@kublambda/watch-triggers';

/** One CloudEvent as the target received it. */
export interface ReceivedEvent {
  id: string;
  type: string;
  subject: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> & { metadata: { uid: string; name: string; resourceVersion: string } };
  /** ce-oldobject, decoded, when present. */
  oldObject?: Record<string, unknown> & { metadata: { resourceVersion: string } };
  /** Which attempt of this id it was, from 1. */
  attempt: number;
  status: number;
}

export interface RecordingTarget {
  /** http://127.0.0.1:<port>: the watcher's RUNNER_URL. */
  url: string;
  /** Every request, answered however. */
  received: ReceivedEvent[];
  /** The requests answered with 2xx. */
  accepted(): ReceivedEvent[];
  /** Decides the status of a request (default 200). */
  answer: (event: Omit<ReceivedEvent, 'status'>) => number;
  stop(): Promise<void>;
}

export async function startRecordingTarget(): Promise<RecordingTarget> {
  const attempts = new Map<string, number>();
  const target: RecordingTarget = {
    url: '',
    received: [],
    accepted: () => target.received.filter((event) => event.status >= 200 && event.status < 300),
    answer: () => 200,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      const header = (name: string) => decodeURIComponent(String(request.headers[name] ?? ''));
      const id = header('ce-id');
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const oldObject = request.headers['ce-oldobject'] ? JSON.parse(header('ce-oldobject')) : undefined;
      const event = { id, type: header('ce-type'), subject: header('ce-subject'), headers: request.headers, body: JSON.parse(text || '{}'), oldObject, attempt };
      const status = target.answer(event);
      target.received.push({ ...event, status });
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `failing on purpose with ${status}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  target.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return target;
}

/** A WatcherConfig as api-controller would write it, with ids computed the same way. */
export function testWatcherConfig(lambda: LambdaName, triggers: Array<Partial<ResolvedWatchTrigger> & Pick<ResolvedWatchTrigger, 'namespace'>>, target = { host: '', path: '/events' }): WatcherConfig {
  return {
    lambda,
    target,
    triggers: triggers.map((trigger, index) => {
      const resolved = { index, apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', events: ['ADDED', 'MODIFIED', 'DELETED'] as ResolvedWatchTrigger['events'], ...trigger };
      return { id: watchTriggerId(resolved), ...resolved };
    }),
  };
}

/** The lambda's watcher Redis user, made with the admin connection as api-controller does; returns its REDIS_URL. */
export async function createWatcherRedisUser(redis: RedisServer, lambda: LambdaName): Promise<string> {
  const password = randomBytes(16).toString('hex');
  const admin = new Redis(redis.adminUrl, { maxRetriesPerRequest: 1 });
  try {
    await admin.call('ACL', 'SETUSER', ...watcherAclSetUserArgs(lambda, password));
  } finally {
    admin.disconnect();
  }
  return `redis://${encodeURIComponent(watcherRedisUser(lambda))}:${password}@${redis.host}:${redis.port}`;
}

/**
 * A kubeconfig with the rights api-controller gives a watcher and nothing more: a
 * ServiceAccount token whose Role allows get/list/watch on the resource in the namespace.
 * `server` replaces the API server's URL (a test proxy in front of it).
 */
export async function writeWatcherKubeconfig(admin: k8s.KubeConfig, options: { namespace: string; resource: string; file: string; server?: string }): Promise<string> {
  const { namespace, resource } = options;
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  const name = `watcher-${randomBytes(3).toString('hex')}`;
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [{ apiGroups: [''], resources: [resource], verbs: ['get', 'list', 'watch'] }] } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace }] },
  });
  const token = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const cluster = admin.getCurrentCluster()!;
  // client-node sends a token over plain HTTP (the loopback test proxy) only with this set; there is no TLS to verify.
  const plainHttp = options.server?.startsWith('http:');
  const trust = plainHttp ? { 'insecure-skip-tls-verify': true } : cluster.caData ? { 'certificate-authority-data': cluster.caData } : { 'certificate-authority': cluster.caFile };
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: options.server ?? cluster.server, ...trust } }],
    users: [{ name, user: { token: token.status!.token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: name, namespace } }],
    'current-context': 'test',
  };
  await writeFile(options.file, JSON.stringify(config), { mode: 0o600 });
  return options.file;
}

export interface WatcherUnderTest {
  process: ManagedProcess;
  /** http://127.0.0.1:<port> of /healthz, /readyz, /metrics. */
  base: string;
  readiness(): Promise<{ status: number; body: { status: string; reason?: string } }>;
  /** Waits until /readyz says ready; a timeout shows the end of the watcher's log. */
  ready(timeoutMs?: number): Promise<void>;
  /** The sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface StartWatcherOptions {
  config: WatcherConfig;
  redisUrl: string;
  runnerUrl: string;
  kubeconfig: string;
  logDir: string;
  name: string;
  env?: Record<string, string>;
}

/** Small timings so tests finish quickly; override with env. */
export const FAST_WATCHER_ENV = { LEASE_DURATION_MS: '3000', LEASE_RENEW_MS: '1000', RETRY_INITIAL_MS: '50', RETRY_MAX_MS: '500', DELIVERY_ATTEMPTS: '4', DELIVERY_TIMEOUT_MS: '10000' };

export async function startWatcher(options: StartWatcherOptions): Promise<WatcherUnderTest> {
  const port = await freePort();
  const process = await startPlatformService(
    'event-watcher',
    {
      WATCHER_CONFIG: JSON.stringify(options.config),
      REDIS_URL: options.redisUrl,
      RUNNER_URL: options.runnerUrl,
      KUBECONFIG: options.kubeconfig,
      POD_NAME: options.name,
      HOST: '127.0.0.1',
      PORT: String(port),
      ...FAST_WATCHER_ENV,
      ...options.env,
    },
    { logDir: options.logDir, name: options.name },
  );
  const base = `http://127.0.0.1:${port}`;
  const readiness = async () => {
    const response = await fetch(`${base}/readyz`);
    return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
  };
  return {
    process,
    base,
    readiness,
    ready: async (timeoutMs = 30_000) => {
      await waitUntil(`${options.name} to be ready`, async () => (await readiness()).status === 200, { timeoutMs, describe: () => logTail(process.logFile) });
    },
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
        if (!match || match[1] !== name) continue;
        const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        if (Object.entries(labels).every(([key, value]) => found[key] === value)) sum += Number(match[3]);
      }
      return sum;
    },
  };
}


export interface ApiServerProxy {
  /** http://127.0.0.1:<port>: the server of the watcher's kubeconfig. */
  url: string;
  /** The next watch request is answered with HTTP 410 Gone. */
  answerNextWatchWithGone(): void;
  /** Ends every open watch now, as a closed connection would; returns how many. */
  endWatches(): number;
  /** Ends every open watch now with an ERROR event carrying a 410 Status, as an expired watch does. */
  endWatchesWithGoneEvent(): number;
  /** Watch requests seen so far. */
  watches: number;
  stop(): Promise<void>;
}

const GONE_STATUS = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version (injected by the test proxy)', reason: 'Expired', code: 410 };

/**
 * A plain-HTTP proxy in front of the API server that can make watches expire on demand. It
 * passes the caller's credentials (its bearer token) through and adds none of its own, so the
 * watcher still has only its ServiceAccount's rights.
 */
export async function startApiServerProxy(admin: k8s.KubeConfig): Promise<ApiServerProxy> {
  const upstream = new URL(admin.getCurrentCluster()!.server);
  const tls: https.RequestOptions = {};
  await admin.applyToHTTPSOptions(tls);
  const agent = new https.Agent({ ca: tls.ca, keepAlive: true });
  const openWatches = new Set<http.ServerResponse>();
  let goneNext = false;
  const endOpenWatches = (last: string) => {
    const count = openWatches.size;
    for (const response of openWatches) response.end(last);
    openWatches.clear();
    return count;
  };
  const proxy: ApiServerProxy = {
    url: '',
    watches: 0,
    answerNextWatchWithGone: () => void (goneNext = true),
    endWatches: () => endOpenWatches(''),
    endWatchesWithGoneEvent: () => endOpenWatches(`${JSON.stringify({ type: 'ERROR', object: GONE_STATUS })}\n`),
    stop: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((request, response) => {
    const isWatch = new URL(request.url!, 'http://x').searchParams.get('watch') === 'true';
    if (isWatch) {
      proxy.watches++;
      if (goneNext) {
        goneNext = false;
        response.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify(GONE_STATUS));
        return;
      }
    }
    const forward = https.request(
      { protocol: 'https:', hostname: upstream.hostname, port: upstream.port, path: request.url, method: request.method, headers: { ...request.headers, host: upstream.host }, agent },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        if (isWatch && answer.statusCode === 200) {
          openWatches.add(response);
          response.once('close', () => openWatches.delete(response));
        }
        // After an injected end, what the API server still sends is dropped, as a broken stream would.
        answer.on('data', (chunk: Buffer) => void (response.writableEnded ? undefined : response.write(chunk)));
        answer.on('end', () => void (response.writableEnded ? undefined : response.end()));
        response.once('close', () => answer.destroy());
      },
    );
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}
