import { normalizePathPrefix, type RouteRecord } from '@kublambda/route-table';

export interface RouteMatch {
  route: RouteRecord;
  /** The request path below the route's prefix, always starting with "/". */
  pathBelowPrefix: string;
}

/** Routes by normalized path prefix; the first route given a prefix keeps it. */
type RoutesByPrefix = Map<string, RouteRecord>;

/** The routes by host rule: exact host, wildcard ("*.example.com" under ".example.com"), any host. */
interface RouteIndex {
  exact: Map<string, RoutesByPrefix>;
  wildcard: Map<string, RoutesByPrefix>;
  any: RoutesByPrefix;
}

function indexRoutes(routes: Iterable<RouteRecord>): RouteIndex {
  const index: RouteIndex = { exact: new Map(), wildcard: new Map(), any: new Map() };
  const tierOf = (tiers: Map<string, RoutesByPrefix>, key: string) => tiers.get(key) ?? tiers.set(key, new Map()).get(key)!;
  for (const route of routes) {
    const byPrefix = !route.host ? index.any : route.host.startsWith('*.') ? tierOf(index.wildcard, route.host.slice(1)) : tierOf(index.exact, route.host);
    const prefix = normalizePathPrefix(route.pathPrefix);
    if (!byPrefix.has(prefix)) byPrefix.set(prefix, route);
  }
  return index;
}

/**
 * The route with the longest prefix covering the path, looking at the path itself and then each
 * ancestor at a "/": "/hello" covers "/hello" and "/hello/x", not "/helloworld".
 */
function longestPrefixMatch(byPrefix: RoutesByPrefix | undefined, path: string): RouteMatch | undefined {
  if (!byPrefix || byPrefix.size === 0) return undefined;
  for (let end = path.length; end > 1; end = path.lastIndexOf('/', end - 1)) {
    const route = byPrefix.get(end === path.length ? path : path.slice(0, end));
    if (route) return { route, pathBelowPrefix: end === path.length ? '/' : path.slice(end) };
  }
  const root = byPrefix.get('/');
  return root && { route: root, pathBelowPrefix: path };
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
 */
export class RouteMatcher {
  readonly #routes = new Map<string, RouteRecord>();
  /** Made on the first match after a change: routes change seldom, requests come all the time. */
  #index: RouteIndex | undefined;

  replaceAll(routes: Iterable<RouteRecord>): void {
    const previous = new Map(this.#routes);
    this.#routes.clear();
    for (const route of routes) this.#routes.set(route.key, unlessUnchanged(previous.get(route.key), route));
    this.#index = undefined;
  }

  put(route: RouteRecord): void {
    this.#routes.set(route.key, unlessUnchanged(this.#routes.get(route.key), route));
    this.#index = undefined;
  }

  delete(key: string): void {
    this.#routes.delete(key);
    this.#index = undefined;
  }

  get(key: string): RouteRecord | undefined {
    return this.#routes.get(key);
  }

  keys(): string[] {
    return [...this.#routes.keys()];
  }

  get size(): number {
    return this.#routes.size;
  }

  /** host without port, lower case; path without the query string. */
  match(host: string, path: string): RouteMatch | undefined {
    const index = (this.#index ??= indexRoutes(this.#routes.values()));
    const suffix = wildcardSuffix(host);
    return (
      longestPrefixMatch(index.exact.get(host), path) ??
      longestPrefixMatch(suffix === undefined ? undefined : index.wildcard.get(suffix), path) ??
      longestPrefixMatch(index.any, path)
    );
  }
}
