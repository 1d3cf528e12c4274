// The platform data kept in Redis, as JSON for the CLI: a lambda's dead letters (events its
// watch triggers gave up on) with a retry, and its state tables, read-only. `kublambda events`
// and `kublambda state` reach it through the API server's port-forward to an api-controller
// pod, so Kubernetes RBAC (pods/portforward in the platform namespace) governs it and no Redis
// address or credential leaves the cluster.
//   GET  /api/namespaces/<ns>/lambdas/<name>/dead-letters
//   POST /api/namespaces/<ns>/lambdas/<name>/dead-letters/<url-encoded id>/retry
//   GET  /api/namespaces/<ns>/tables/<table>?prefix=&limit=&cursor=
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { StateError, type ListOptions, type ListPage } from '@kublambda/lambda-api';
import { describeOutcome, type AttemptOutcome, type DeadLetter, type LambdaName } from '@kublambda/watch-triggers';

export const ADMIN_API_PATH = '/api';

/** A Kubernetes name or namespace (RFC 1123 label or subdomain): nothing that could reach another lambda's keys. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface StoredDeadLetter {
  entry: DeadLetter;
  /** The list element as stored: what removing it after a retry must match. */
  raw: string;
}

export interface AdminApiDeps {
  /** Newest first. */
  deadLetters(lambda: LambdaName): Promise<StoredDeadLetter[]>;
  /** false when it was no longer there (another retry took it). */
  removeDeadLetter(lambda: LambdaName, raw: string): Promise<boolean>;
  /** Sends the event again to the lambda, as its watcher did; undefined when the lambda has no route (deleted, not built). */
  redeliver(lambda: LambdaName, entry: DeadLetter): Promise<AttemptOutcome | undefined>;
  listTable(namespace: string, table: string, options: ListOptions): Promise<ListPage>;
}

class AdminApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function lambdaOf(request: Request): LambdaName {
  const { namespace, name } = request.params as { namespace: string; name: string };
  if (!NAME.test(namespace) || namespace.includes('.')) throw new AdminApiError(400, `"${namespace}" is not a namespace name`);
  if (!NAME.test(name)) throw new AdminApiError(400, `"${name}" is not a Lambda name`);
  return { namespace, name };
}

/** prefix, limit (1..1000) and cursor, each at most once. */
export function parseListQuery(query: Record<string, unknown>): ListOptions {
  const one = (key: string) => {
    const value = query[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new AdminApiError(400, `${key} must be given once`);
    return value;
  };
  const limitText = one('limit');
  const limit = limitText === undefined ? undefined : Number(limitText);
  if (limit !== undefined && (!/^\d+$/.test(limitText!) || limit < 1 || limit > 1000)) throw new AdminApiError(400, `limit must be a whole number from 1 to 1000, not "${limitText}"`);
  return { prefix: one('prefix'), limit, cursor: one('cursor') };
}

const handle = (body: (request: Request, response: Response) => Promise<void>) => (request: Request, response: Response, next: NextFunction) => body(request, response).catch(next);

export function createAdminApi(deps: AdminApiDeps): Router {
  const router = express.Router();

  router.get(
    '/namespaces/:namespace/lambdas/:name/dead-letters',
    handle(async (request, response) => {
      const lambda = lambdaOf(request);
      response.json({ deadLetters: (await deps.deadLetters(lambda)).map(({ entry }) => entry) });
    }),
  );

  router.post(
    '/namespaces/:namespace/lambdas/:name/dead-letters/:id/retry',
    handle(async (request, response) => {
      const lambda = lambdaOf(request);
      const id = (request.params as { id: string }).id;
      const found = (await deps.deadLetters(lambda)).find(({ entry }) => entry.id === id);
      if (!found) throw new AdminApiError(404, `no dead letter "${id}" for ${lambda.namespace}/${lambda.name}`);
      const outcome = await deps.redeliver(lambda, found.entry);
      if (!outcome) throw new AdminApiError(409, `${lambda.namespace}/${lambda.name} has no route (deleted, or not built yet): nothing to deliver to; the dead letter stays`);
      if (!('status' in outcome) || outcome.status < 200 || outcome.status >= 300) {
        throw new AdminApiError(502, `the lambda did not take the event (${describeOutcome(outcome)}); the dead letter stays`);
      }
      await deps.removeDeadLetter(lambda, found.raw);
      response.json({ retried: found.entry, status: outcome.status });
    }),
  );

  router.get(
    '/namespaces/:namespace/tables/:table',
    handle(async (request, response) => {
      const { namespace, table } = request.params as { namespace: string; table: string };
      // The state store checks the names (and the cursor) itself: a StateError is a 400.
      response.json(await deps.listTable(namespace, table, parseListQuery(request.query as Record<string, unknown>)));
    }),
  );

  router.use((_request: Request, response: Response) => {
    response.status(404).json({ error: 'no such admin API path', code: 404 });
  });
  router.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = error instanceof AdminApiError ? error.status : error instanceof StateError && error.code === 'InvalidArgument' ? 400 : 500;
    response.status(status).json({ error: error instanceof Error ? error.message : String(error), code: status });
  });
  return router;
}
