import { describe, expect, it } from '@jest/globals';
import type { RouteRecord } from '@kublambda/route-table';
import { RouteMatcher, type RouteMatch } from './route-matcher.ts';
import { testRoute } from './route.testing.ts';

const route = (name: string, pathPrefix: string, host?: string) => testRoute(name, pathPrefix, host ? { host } : {});

const matcher = new RouteMatcher();
matcher.replaceAll([
  route('root', '/'),
  route('hello', '/hello'),
  route('shop', '/shop/'),
  route('orders', '/shop/orders'),
  route('api-host', '/', 'api.example.com'),
  route('api-v2', '/v2', 'api.example.com'),
  route('any-tenant', '/', '*.tenants.example.com'),
]);

describe('RouteMatcher', () => {
  it.each([
    ['any.host', '/hello', 'hello', '/'],
    ['any.host', '/hello/', 'hello', '/'],
    ['any.host', '/hello/world', 'hello', '/world'],
    ['any.host', '/helloworld', 'root', '/helloworld'],
    ['any.host', '/shop', 'shop', '/'],
    ['any.host', '/shop/cart', 'shop', '/cart'],
    ['any.host', '/shop/orders/42', 'orders', '/42'],
    ['any.host', '/shop/ordersx', 'shop', '/ordersx'],
    ['api.example.com', '/hello', 'api-host', '/hello'],
    ['api.example.com', '/v2/users', 'api-v2', '/users'],
    ['a.tenants.example.com', '/x', 'any-tenant', '/x'],
    ['b.a.tenants.example.com', '/hello', 'hello', '/'],
    ['tenants.example.com', '/hello', 'hello', '/'],
    ['any.host', '/', 'root', '/'],
    ['any.host', '/shop//orders', 'shop', '//orders'],
    ['any.host', '/shop/orders/', 'orders', '/'],
    ['api.example.com', '/v2', 'api-v2', '/'],
    ['api.example.com', '/v2x', 'api-host', '/v2x'],
  ])('routes %s %s to %s with %s below the prefix', (host, path, name, below) => {
    expect(matcher.match(host, path)).toMatchObject({ route: { name }, pathBelowPrefix: below });
  });

  it('answers nothing when no prefix covers the path', () => {
    const narrow = new RouteMatcher();
    narrow.replaceAll([route('hello', '/hello')]);
    expect(narrow.match('x', '/other')).toBeUndefined();
    expect(narrow.match('x', '/')).toBeUndefined();
  });

  it('takes an empty prefix for "/"', () => {
    const table = new RouteMatcher();
    table.replaceAll([route('empty', '')]);
    expect(table.match('x', '/a')).toMatchObject({ route: { name: 'empty' }, pathBelowPrefix: '/a' });
  });

  it('follows puts and deletes', () => {
    const table = new RouteMatcher();
    table.put(route('a', '/a'));
    expect(table.match('x', '/a/1')?.route.name).toBe('a');
    table.put(testRoute('a', '/b', { generation: 2 }));
    expect(table.match('x', '/a/1')).toBeUndefined();
    expect(table.match('x', '/b')?.route.generation).toBe(2);
    table.delete('ns/a');
    expect(table.size).toBe(0);
  });

  it('keeps a route record that is published again unchanged, and takes a changed one', () => {
    const table = new RouteMatcher();
    const first = testRoute('env', '/env', { env: [{ name: 'TOKEN', value: 'a' }] });
    table.put(first);
    table.put(structuredClone(first));
    expect(table.get('ns/env')).toBe(first);
    table.replaceAll([structuredClone(first)]);
    expect(table.get('ns/env')).toBe(first);
    const rotated = testRoute('env', '/env', { env: [{ name: 'TOKEN', value: 'b' }] });
    table.put(rotated);
    expect(table.get('ns/env')).toBe(rotated);
  });

  it('finds the longest prefix among thousands of routes, and the first route of a prefix', () => {
    const table = new RouteMatcher();
    const many = Array.from({ length: 3000 }, (_, i) => route(`fn-${i}`, `/team-${i % 30}/fn-${i}`, i % 3 === 0 ? `h${i % 7}.example.com` : undefined));
    table.replaceAll([...many, route('team-4', '/team-4'), route('twin', '/team-4')]);
    expect(table.match('any.host', '/team-4/fn-4/orders?x')).toMatchObject({ route: { name: 'fn-4' }, pathBelowPrefix: '/orders?x' });
    expect(table.match('any.host', '/team-4/fn-44')).toMatchObject({ route: { name: 'team-4' }, pathBelowPrefix: '/fn-44' });
    expect(table.match('h3.example.com', '/team-3/fn-3/x')).toMatchObject({ route: { name: 'fn-3' }, pathBelowPrefix: '/x' });
    // fn-3 is served on its host only.
    expect(table.match('other.example.com', '/team-3/fn-3/x')).toBeUndefined();
    table.delete('ns/team-4');
    expect(table.match('any.host', '/team-4/fn-44')?.route.name).toBe('twin');
  });

  it('gives a prefix back to the route that had it first when that route returns to it', () => {
    const table = new RouteMatcher();
    table.put(route('first', '/x'));
    table.put(route('second', '/x'));
    table.put(route('first', '/y'));
    expect(table.match('h', '/x')?.route.name).toBe('second');
    expect(table.match('h', '/y')?.route.name).toBe('first');
    // It keeps its place among the routes, as it keeps its key.
    table.put(route('first', '/x'));
    expect(table.match('h', '/x')?.route.name).toBe('first');
    expect(table.match('h', '/y')).toBeUndefined();
  });

  it('moves a route between host rules, leaving nothing behind under the old one', () => {
    const table = new RouteMatcher();
    table.put(route('any', '/'));
    table.put(route('moving', '/m', 'a.example.com'));
    expect(table.match('a.example.com', '/m')?.route.name).toBe('moving');
    table.put(route('moving', '/m', '*.example.com'));
    expect(table.match('a.example.com', '/m')?.route.name).toBe('moving');
    expect(table.match('b.example.com', '/m/1')).toMatchObject({ route: { name: 'moving' }, pathBelowPrefix: '/1' });
    table.put(route('moving', '/m'));
    expect(table.match('b.example.com', '/m')?.route.name).toBe('moving');
    expect(table.match('b.example.com', '/other')?.route.name).toBe('any');
    table.delete('ns/moving');
    expect(table.match('a.example.com', '/m')?.route.name).toBe('any');
    table.delete('ns/missing');
    expect(table.size).toBe(1);
  });

  it('takes the last record of a key given twice to replaceAll, in the place of the first', () => {
    const table = new RouteMatcher();
    table.replaceAll([route('a', '/p'), route('b', '/p'), route('a', '/q')]);
    expect(table.match('h', '/p')?.route.name).toBe('b');
    expect(table.match('h', '/q')?.route.name).toBe('a');
    expect(table.keys()).toEqual(['ns/a', 'ns/b']);
  });

  it('matches as a scan of every route would, through a long run of puts, deletes and full loads', () => {
    // The reference: every route in the order its key arrived, the longest covering prefix of
    // the best host rule, the earliest route of a prefix.
    const covers = (prefix: string, path: string) => prefix === '/' || (path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === '/'));
    const normalized = (prefix: string) => (prefix === '' ? '/' : prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
    const scan = (routes: Map<string, RouteRecord>, host: string, path: string): RouteMatch | undefined => {
      const rules = [(r: RouteRecord) => r.host === host, (r: RouteRecord) => !!r.host?.startsWith('*.') && host.indexOf('.') > 0 && host.slice(host.indexOf('.')) === r.host.slice(1), (r: RouteRecord) => !r.host];
      for (const rule of rules) {
        let best: RouteRecord | undefined;
        for (const candidate of routes.values()) {
          if (rule(candidate) && covers(normalized(candidate.pathPrefix), path) && (!best || normalized(candidate.pathPrefix).length > normalized(best.pathPrefix).length)) best = candidate;
        }
        if (best) {
          const prefix = normalized(best.pathPrefix);
          return { route: best, pathBelowPrefix: prefix === '/' ? path : path.slice(prefix.length) || '/' };
        }
      }
      return undefined;
    };
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const hosts = [undefined, undefined, 'a.example.com', 'b.example.com', '*.example.com', '*.a.example.com'];
    const prefixes = ['/', '', '/x', '/x/', '/x/y', '/x/y/z', '/y', '/y/x'];
    const paths = ['/', '/x', '/x/', '/x/y', '/x/y/z/w', '/xy', '/y', '/y/x/1', '/z'];
    const requestHosts = ['a.example.com', 'b.example.com', 'c.example.com', 'q.a.example.com', 'example.com', 'other'];
    const randomRoute = () => route(`fn-${random(12)}`, prefixes[random(prefixes.length)]!, hosts[random(hosts.length)]);
    const table = new RouteMatcher();
    const reference = new Map<string, RouteRecord>();
    const mismatches: unknown[] = [];
    for (let step = 0; step < 3000; step++) {
      const action = random(20);
      if (action < 12) {
        const next = { ...randomRoute(), generation: step };
        table.put(next);
        reference.set(next.key, next);
      } else if (action < 19) {
        const key = `ns/fn-${random(12)}`;
        table.delete(key);
        reference.delete(key);
      } else {
        const all = Array.from({ length: random(10) }, (_, i) => ({ ...randomRoute(), generation: step + i }));
        table.replaceAll(all);
        reference.clear();
        for (const next of all) reference.set(next.key, next);
      }
      for (const host of requestHosts) {
        for (const path of paths) {
          const expected = scan(reference, host, path);
          const actual = table.match(host, path);
          if (actual?.route !== expected?.route || actual?.pathBelowPrefix !== expected?.pathBelowPrefix) {
            mismatches.push({ step, host, path, route: actual?.route.key, below: actual?.pathBelowPrefix, expected: expected?.route.key, expectedBelow: expected?.pathBelowPrefix });
          }
        }
      }
      if (table.size !== reference.size) mismatches.push({ step, size: table.size, expected: reference.size });
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });
});
