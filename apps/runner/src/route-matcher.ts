import { normalizePathPrefix, type RouteRecord } from '@kublambda/route-table';

export interface RouteMatch {
  route: RouteRecord;
  /** The request path below the route's prefix, always starting with "/". */
  pathBelowPrefix: string;
}

/** A route in the table, with its place in the order routes arrived (the first given a prefix keeps it). */
interface HeldRoute {
  route: RouteRecord;
  order: number;
}

/** Routes by normalized path prefix; each prefix's routes in arrival order, the first holds it. */
type RoutesByPrefix = Map<string, HeldRoute[]>;

/** The routes by host rule: exact host, wildcard ("*.example.com" under ".example.com"), any host. */
interface RouteIndex {
  exact: Map<string, RoutesByPrefix>;
  wildcard: Map<string, RoutesByPrefix>;
  any: RoutesByPrefix;
}

const emptyIndex = (): RouteIndex => ({ exact: new Map(), wildcard: new Map(), any: new Map() });

/** The host rule's tier and the key the route's prefixes are kept under in it (undefined: any host). */
function tierOf(index: RouteIndex, host: string | undefined): [Map<string, RoutesByPrefix>, string] | undefined {
  if (!host) return undefined;
  return host.startsWith('*.') ? [index.wildcard, host.slice(1)] : [index.exact, host];
}

function addToIndex(index: RouteIndex, held: HeldRoute): void {
  const tier = tierOf(index, held.route.host);
  let byPrefix = index.any;
  if (tier) {
    const [hosts, host] = tier;
    byPrefix = hosts.get(host) ?? hosts.set(host, new Map()).get(host)!;
  }
  const prefix = normalizePathPrefix(held.route.pathPrefix);
  const holders = byPrefix.get(prefix);
  if (!holders) {
    byPrefix.set(prefix, [held]);
    return;
  }
  // Seldom more than one: a prefix two lambdas were given (api-controller's claims refuse the second).
  const at = holders.findIndex((other) => other.order > held.order);
  holders.splice(at === -1 ? holders.length : at, 0, held);
}

function removeFromIndex(index: RouteIndex, held: HeldRoute): void {
  const tier = tierOf(index, held.route.host);
  const byPrefix = tier ? tier[0].get(tier[1]) : index.any;
  const prefix = normalizePathPrefix(held.route.pathPrefix);
  const holders = byPrefix?.get(prefix);
  if (!byPrefix || !holders) return;
  const at = holders.indexOf(held);
  if (at !== -1) holders.splice(at, 1);
  if (holders.length > 0) return;
  byPrefix.delete(prefix);
  if (tier && byPrefix.size === 0) tier[0].delete(tier[1]);
}

/**
 * The route with the longest prefix covering the path, looking at the path itself and then each
 * ancestor at a "/": "/hello" covers "/hello" and "/hello/x", not "/helloworld".
 */
function longestPrefixMatch(byPrefix: RoutesByPrefix | undefined, path: string): RouteMatch | undefined {
  if (!byPrefix || byPrefix.size === 0) return undefined;
  for (let end = path.length; end > 1; end = path.lastIndexOf('/', end - 1)) {
    const holders = byPrefix.get(end === path.length ? path : path.slice(0, end));
    if (holders) return { route: holders[0]!.route, pathBelowPrefix: end === path.length ? '/' : path.slice(end) };
  }
  const root = byPrefix.get('/');
  return root && { route: root[0]!.route, pathBelowPrefix: path };
}

/** The suffix a wildcard rule for this host is indexed under: "*.example.com" covers exactly one more label. */
function wildcardSuffix(host: string): string | undefined {
  const firstDot = host.indexOf('.');
  return firstDot > 0 ? host.slice(firstDot) : undefined;
}

/**
 * The record already held when the new one says the same: a route keeps its identity until it
 * changes (asset, settings or env), and the runner starts new workers exactly when it does.
 */
function unlessUnchanged(held: RouteRecord | undefined, incoming: RouteRecord): RouteRecord {
  return held && JSON.stringify(held) === JSON.stringify(incoming) ? held : incoming;
}

/**
 * The runner's table of routes. Like an Ingress, host rules come first (exact host, then
 * wildcard, then routes for any host); within them the longest path prefix wins.
 *
 * The index is kept up to date by each put and delete, so a change costs the same with ten
 * routes or a hundred thousand, and a request never waits for the table to be rebuilt.
 */
export class RouteMatcher {
  readonly #routes = new Map<string, HeldRoute>();
  #index = emptyIndex();
  #arrivals = 0;

  replaceAll(routes: Iterable<RouteRecord>): void {
    const previous = new Map(this.#routes);
    this.#routes.clear();
    this.#index = emptyIndex();
    for (const route of routes) {
      const held = this.#routes.get(route.key);
      // The same key twice: the last record wins, in the place of the first.
      if (held) removeFromIndex(this.#index, held);
      this.#hold(route.key, unlessUnchanged(previous.get(route.key)?.route, route), held?.order);
    }
  }

  put(route: RouteRecord): void {
    const held = this.#routes.get(route.key);
    const record = unlessUnchanged(held?.route, route);
    if (record === held?.route) return;
    if (held) removeFromIndex(this.#index, held);
    this.#hold(route.key, record, held?.order);
  }

  delete(key: string): void {
    const held = this.#routes.get(key);
    if (!held) return;
    removeFromIndex(this.#index, held);
    this.#routes.delete(key);
  }

  get(key: string): RouteRecord | undefined {
    return this.#routes.get(key)?.route;
  }

  keys(): string[] {
    return [...this.#routes.keys()];
  }

  get size(): number {
    return this.#routes.size;
  }

  /** host without port, lower case; path without the query string. */
  match(host: string, path: string): RouteMatch | undefined {
    const index = this.#index;
    const suffix = wildcardSuffix(host);
    return (
      longestPrefixMatch(index.exact.get(host), path) ??
      longestPrefixMatch(suffix === undefined ? undefined : index.wildcard.get(suffix), path) ??
      longestPrefixMatch(index.any, path)
    );
  }

  #hold(key: string, route: RouteRecord, order = this.#arrivals++): void {
    const held = { route, order };
    this.#routes.set(key, held);
    addToIndex(this.#index, held);
  }
}
