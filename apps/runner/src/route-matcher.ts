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

/** Routes by normalized path prefix: the route holding each prefix. */
type RoutesByPrefix = Map<string, RouteRecord>;

/** The routes by host rule: exact host, wildcard ("*.example.com" under ".example.com"), any host. */
interface RouteIndex {
  exact: Map<string, RoutesByPrefix>;
  wildcard: Map<string, RoutesByPrefix>;
  any: RoutesByPrefix;
}

const emptyIndex = (): RouteIndex => ({ exact: new Map(), wildcard: new Map(), any: new Map() });

/** Where a route sits in the index: its host rule's tier and host key (none: any host), its prefix, and a name for the pair. */
function placeOf(index: RouteIndex, route: RouteRecord): { tier?: Map<string, RoutesByPrefix>; host: string; prefix: string; slot: string } {
  const prefix = normalizePathPrefix(route.pathPrefix);
  if (!route.host) return { host: '', prefix, slot: ` ${prefix}` };
  const wildcard = route.host.startsWith('*.');
  const host = wildcard ? route.host.slice(1) : route.host;
  return { tier: wildcard ? index.wildcard : index.exact, host, prefix, slot: `${wildcard ? '*' : '='}${host} ${prefix}` };
}

/** Inserts in arrival order. */
function insertByOrder(list: HeldRoute[], held: HeldRoute): void {
  const at = list.findIndex((other) => other.order > held.order);
  list.splice(at === -1 ? list.length : at, 0, held);
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
 *
 * The index is kept up to date by each put and delete, so a change costs the same with ten
 * routes or a hundred thousand, and a request never waits for the table to be rebuilt.
 */
export class RouteMatcher {
  readonly #routes = new Map<string, HeldRoute>();
  #index = emptyIndex();
  /**
   * The routes given a prefix another route holds, by place, in arrival order: the next takes
   * it when the holder goes. Seldom any (api-controller's claims refuse the second).
   */
  #waiting = new Map<string, HeldRoute[]>();
  #arrivals = 0;

  replaceAll(routes: Iterable<RouteRecord>): void {
    const previous = new Map(this.#routes);
    this.#routes.clear();
    this.#index = emptyIndex();
    this.#waiting = new Map();
    for (const route of routes) {
      const held = this.#routes.get(route.key);
      // The same key twice: the last record wins, in the place of the first.
      if (held) this.#unindex(held);
      this.#hold(route.key, unlessUnchanged(previous.get(route.key)?.route, route), held?.order);
    }
  }

  put(route: RouteRecord): void {
    const held = this.#routes.get(route.key);
    const record = unlessUnchanged(held?.route, route);
    if (record === held?.route) return;
    if (held) this.#unindex(held);
    this.#hold(route.key, record, held?.order);
  }

  delete(key: string): void {
    const held = this.#routes.get(key);
    if (!held) return;
    this.#unindex(held);
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
    const { tier, host, prefix, slot } = placeOf(this.#index, route);
    let byPrefix = this.#index.any;
    if (tier) byPrefix = tier.get(host) ?? tier.set(host, new Map()).get(host)!;
    const holder = byPrefix.get(prefix);
    if (!holder) {
      byPrefix.set(prefix, route);
      return;
    }
    const waiting = this.#waiting.get(slot) ?? this.#waiting.set(slot, []).get(slot)!;
    const holderHeld = this.#routes.get(holder.key)!;
    if (held.order < holderHeld.order) {
      byPrefix.set(prefix, route);
      insertByOrder(waiting, holderHeld);
    } else {
      insertByOrder(waiting, held);
    }
  }

  #unindex(held: HeldRoute): void {
    const { tier, host, prefix, slot } = placeOf(this.#index, held.route);
    const byPrefix = tier ? tier.get(host) : this.#index.any;
    if (!byPrefix) return;
    const waiting = this.#waiting.get(slot);
    if (byPrefix.get(prefix) === held.route) {
      const next = waiting?.shift();
      if (next) byPrefix.set(prefix, next.route);
      else byPrefix.delete(prefix);
    } else if (waiting) {
      const at = waiting.indexOf(held);
      if (at !== -1) waiting.splice(at, 1);
    }
    if (waiting?.length === 0) this.#waiting.delete(slot);
    if (tier && byPrefix.size === 0) tier.delete(host);
  }
}
