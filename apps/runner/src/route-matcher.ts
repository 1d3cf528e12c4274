import type { RouteRecord } from '@kublambda/route-table';

export interface RouteMatch {
  route: RouteRecord;
  /** The request path below the route's prefix, always starting with "/". */
  pathBelowPrefix: string;
}

/** Strips a trailing slash, so "/shop/" and "/shop" are one prefix; "/" stays "/". */
function normalizePrefix(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

/** Whether the path is the prefix itself or lies below it: "/hello" covers "/hello/x", not "/helloworld". */
function pathBelow(prefix: string, path: string): string | undefined {
  if (prefix === '/') return path;
  if (path === prefix) return '/';
  if (path.startsWith(prefix) && path[prefix.length] === '/') return path.slice(prefix.length);
  return undefined;
}

function hostMatches(routeHost: string, host: string): 'exact' | 'wildcard' | undefined {
  if (routeHost === host) return 'exact';
  // "*.example.com" covers exactly one more label, as in an Ingress rule.
  if (routeHost.startsWith('*.')) {
    const suffix = routeHost.slice(1);
    const label = host.slice(0, -suffix.length);
    if (host.endsWith(suffix) && label.length > 0 && !label.includes('.')) return 'wildcard';
  }
  return undefined;
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

  replaceAll(routes: Iterable<RouteRecord>): void {
    const previous = new Map(this.#routes);
    this.#routes.clear();
    for (const route of routes) this.#routes.set(route.key, unlessUnchanged(previous.get(route.key), route));
  }

  put(route: RouteRecord): void {
    this.#routes.set(route.key, unlessUnchanged(this.#routes.get(route.key), route));
  }

  delete(key: string): void {
    this.#routes.delete(key);
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
    const byHost: Record<'exact' | 'wildcard' | 'any', RouteMatch[]> = { exact: [], wildcard: [], any: [] };
    for (const route of this.#routes.values()) {
      const below = pathBelow(normalizePrefix(route.pathPrefix), path);
      if (below === undefined) continue;
      const kind = route.host ? hostMatches(route.host, host) : 'any';
      if (kind) byHost[kind].push({ route, pathBelowPrefix: below });
    }
    for (const candidates of [byHost.exact, byHost.wildcard, byHost.any]) {
      if (candidates.length > 0) {
        return candidates.reduce((best, next) =>
          normalizePrefix(next.route.pathPrefix).length > normalizePrefix(best.route.pathPrefix).length ? next : best,
        );
      }
    }
    return undefined;
  }
}
