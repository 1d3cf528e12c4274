import { once } from 'node:events';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import os from 'node:os';

export type Env = Record<string, string | undefined>;

/**
 * Reads configuration from environment variables, collecting every problem so that start-up
 * fails once with all of them, each naming its variable.
 */
export class EnvReader {
  readonly #env: Env;
  readonly #problems: string[] = [];

  constructor(env: Env) {
    this.#env = env;
  }

  string(name: string, fallback?: string): string {
    const value = this.#env[name]?.trim();
    if (value) return value;
    if (fallback !== undefined) return fallback;
    this.#problems.push(`${name} is required`);
    return '';
  }

  integer(name: string, fallback: number, range: { min: number; max: number }): number {
    const raw = this.#env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < range.min || value > range.max) {
      this.#problems.push(`${name} must be a whole number from ${range.min} to ${range.max}, not "${raw}"`);
      return fallback;
    }
    return value;
  }

  /** A number (fractions allowed) within [min, max]; exclusive bounds refuse the bound itself. */
  number(name: string, fallback: number, range: { min: number; max: number; minExclusive?: boolean; maxExclusive?: boolean }): number {
    const raw = this.#env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    const belowMin = range.minExclusive ? value <= range.min : value < range.min;
    const aboveMax = range.maxExclusive ? value >= range.max : value > range.max;
    if (!Number.isFinite(value) || belowMin || aboveMax) {
      const lower = range.minExclusive ? `greater than ${range.min}` : `at least ${range.min}`;
      const upper = range.maxExclusive ? `less than ${range.max}` : `at most ${range.max}`;
      this.#problems.push(`${name} must be a number ${lower} and ${upper}, not "${raw}"`);
      return fallback;
    }
    return value;
  }

  /** Records a problem found by checking values against each other. */
  problem(message: string): void {
    this.#problems.push(message);
  }

  /** Runs a parser of a sub-configuration, recording its error as a problem. */
  nested<T>(parse: (env: Env) => T): T | undefined {
    try {
      return parse(this.#env);
    } catch (error) {
      this.#problems.push((error as Error).message);
      return undefined;
    }
  }

  /** Throws one error listing every problem found, if any. */
  finish(component: string): void {
    if (this.#problems.length > 0) {
      throw new Error(`${component}: invalid configuration:\n  - ${this.#problems.join('\n  - ')}`);
    }
  }
}

/** Lease-based leader election as a controller reads it from the environment (the names client-go's flags have). */
export interface LeaderElectionSettings {
  /** This replica's name in the Lease (and in Events): POD_NAME, else host and process id. */
  identity: string;
  /** The Lease's namespace: LEADER_ELECTION_NAMESPACE, else POD_NAMESPACE, else kublambda-system. */
  namespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Reads POD_NAME, LEADER_ELECTION_NAMESPACE, LEADER_ELECTION_LEASE (default leaseName), LEASE_DURATION_MS, RENEW_DEADLINE_MS and RETRY_PERIOD_MS. */
export function readLeaderElection(read: EnvReader, leaseName: string): LeaderElectionSettings {
  return {
    identity: read.string('POD_NAME', `${os.hostname()}-${process.pid}`),
    namespace: read.string('LEADER_ELECTION_NAMESPACE', read.string('POD_NAMESPACE', 'kublambda-system')),
    leaseName: read.string('LEADER_ELECTION_LEASE', leaseName),
    leaseDurationMs: read.integer('LEASE_DURATION_MS', 15_000, { min: 1_000, max: 300_000 }),
    renewDeadlineMs: read.integer('RENEW_DEADLINE_MS', 10_000, { min: 500, max: 300_000 }),
    retryPeriodMs: read.integer('RETRY_PERIOD_MS', 2_000, { min: 100, max: 60_000 }),
  };
}

/** Parses configuration, or logs why it cannot and exits: a service must not start half-configured. */
export function configOrExit<T>(parse: () => T, logger: { error(message: string, meta?: object): unknown }): T {
  try {
    return parse();
  } catch (error) {
    logger.error((error as Error).message);
    process.exit(1);
  }
}

/**
 * What a child process needs from our environment to reach the network, and nothing else:
 * PATH, HOME, TMPDIR, CA bundles and proxies. Behind a TLS-inspecting proxy, npm fails with
 * SELF_SIGNED_CERT_IN_CHAIN without NODE_EXTRA_CA_CERTS. Credentials never pass.
 */
export function networkEnv(env: Env): Record<string, string> {
  return Object.fromEntries(NETWORK_ENV.flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
}

const NETWORK_ENV = ['PATH', 'HOME', 'TMPDIR', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

export interface AdminListener {
  host: string;
  port: number;
}

/**
 * ADMIN_PORT and ADMIN_HOST: a service's admin HTTP server, off (undefined) unless ADMIN_PORT is
 * set, on loopback unless ADMIN_HOST says otherwise (clients reach it through a port-forward to
 * the pod, which Kubernetes RBAC governs). `dependents` are settings that only mean something
 * with the server on: setting one without ADMIN_PORT is a problem, not silently ignored.
 */
export function parseAdminListener(env: Env, dependents: string[] = []): { listener?: AdminListener; problems: string[] } {
  const problems: string[] = [];
  const port = env.ADMIN_PORT?.trim();
  const host = env.ADMIN_HOST?.trim() || '127.0.0.1';
  if (port && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) problems.push(`ADMIN_PORT must be a whole number from 1 to 65535, not "${port}"`);
  if (!isIP(host) && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host)) problems.push(`ADMIN_HOST must be an IP address or a host name, not "${host}"`);
  if (!port) {
    for (const name of ['ADMIN_HOST', ...dependents]) {
      if (env[name]?.trim()) problems.push(`${name} is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)`);
    }
  }
  return { listener: port && problems.length === 0 ? { host, port: Number(port) } : undefined, problems };
}

/** Listens on the admin listener; resolves once it does, rejects if it cannot (the port is taken, say). */
export async function serveAdmin(app: { listen(port: number, host: string): Server }, listener: AdminListener): Promise<Server> {
  const server = app.listen(listener.port, listener.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => Promise.reject(new Error(`admin server: cannot listen on ${listener.host}:${listener.port}`, { cause: error }))),
  ]);
  return server;
}
