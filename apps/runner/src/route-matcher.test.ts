import { describe, expect, it } from '@jest/globals';
import { RouteMatcher } from './route-matcher.ts';
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
});
