import { describe, expect, it } from '@jest/globals';
import { decidePath, firstPathSegment, formatGrant, isNamespaceName, type PathDecision, type PathPolicy, type RouteGrant } from './path-ownership.ts';

const none: PathPolicy = { grants: [], grantsOnly: false };
const grants: RouteGrant[] = [
  { namespace: 'evil', host: '', pathPrefix: '/hello/admin' },
  { namespace: 'shop', host: 'shop.example.com', pathPrefix: '/' },
  { namespace: 'api', host: 'shop.example.com', pathPrefix: '/api' },
  { namespace: 'tenants', host: '*.tenants.example.com', pathPrefix: '/' },
  { namespace: 'acme', host: 'acme.tenants.example.com', pathPrefix: '/' },
  { namespace: 'evil', host: '', pathPrefix: '/default' },
  { namespace: 'docs', host: '', pathPrefix: '/default/docs' },
];
const granted: PathPolicy = { grants, grantsOnly: false };
const only: PathPolicy = { grants, grantsOnly: true };

const allowed = (owned: boolean): PathDecision => ({ allowed: true, owned });
const refused = (why: string): PathDecision => ({ allowed: false, why });

describe('decidePath', () => {
  it.each<[string, string, string, string, boolean, PathPolicy, PathDecision]>([
    // [case, namespace, host, path, first segment is a namespace, policy, decision]
    ['no rules: first come, first served (claims decide)', 'evil', '', '/hello/admin', false, none, allowed(false)],
    ['no rules, on a host', 'evil', 'a.example.com', '/', false, none, allowed(false)],
    ['its own /<namespace>/ is owned', 'team', '', '/team/x', true, none, allowed(true)],
    ['its own /<namespace> itself is owned', 'team', '', '/team', false, none, allowed(true)],
    ['its own prefix also on a host', 'team', 'a.example.com', '/team/x', true, none, allowed(true)],
    ['another namespace\'s /<namespace>/ is refused', 'evil', '', '/default/x', true, none, refused('belongs to namespace default')],
    ['... also on a host nobody was granted', 'evil', 'a.example.com', '/default', true, none, refused('belongs to namespace default')],
    ['a first segment naming no namespace is no rule', 'evil', '', '/nobody/x', false, none, allowed(false)],
    ['"/" has no first segment', 'evil', '', '/', false, none, allowed(false)],
    ['a grant owns its prefix for its namespace', 'evil', '', '/hello/admin/users', false, granted, allowed(true)],
    ['a grant refuses other namespaces at its prefix', 'default', '', '/hello/admin', false, granted, refused('belongs to namespace evil: platform configuration grants it /hello/admin')],
    ['... and below it', 'default', '', '/hello/admin/x', false, granted, refused('belongs to namespace evil: platform configuration grants it /hello/admin')],
    ['above a grant is not covered by it', 'default', '', '/hello', false, granted, allowed(false)],
    ['a path beside a grant is not covered by it', 'default', '', '/hello/administrator', false, granted, allowed(false)],
    ['a whole host', 'shop', 'shop.example.com', '/anything', false, granted, allowed(true)],
    ['a whole host refuses others', 'evil', 'shop.example.com', '/', false, granted, refused('belongs to namespace shop: platform configuration grants it shop.example.com')],
    ['the longer prefix on the host wins', 'api', 'shop.example.com', '/api/v1', false, granted, allowed(true)],
    ['... also against the host\'s owner', 'shop', 'shop.example.com', '/api', false, granted, refused('belongs to namespace api: platform configuration grants it shop.example.com/api')],
    ['a host grant does not cover lambdas for any host', 'evil', '', '/anything', false, granted, allowed(false)],
    ['an exact host before the /<namespace>/ rule (any host)', 'shop', 'shop.example.com', '/default/x', true, granted, allowed(true)],
    ['a wildcard grant covers one more label', 'tenants', 'beta.tenants.example.com', '/x', false, granted, allowed(true)],
    ['a wildcard grant refuses others there', 'evil', 'beta.tenants.example.com', '/x', false, granted, refused('belongs to namespace tenants: platform configuration grants it *.tenants.example.com')],
    ['a wildcard grant covers the wildcard host itself', 'evil', '*.tenants.example.com', '/', false, granted, refused('belongs to namespace tenants: platform configuration grants it *.tenants.example.com')],
    ['a wildcard covers one label only', 'evil', 'a.b.tenants.example.com', '/', false, granted, allowed(false)],
    ['an exact host before a wildcard', 'acme', 'acme.tenants.example.com', '/', false, granted, allowed(true)],
    ['... whatever the prefix lengths', 'tenants', 'acme.tenants.example.com', '/deep/path', false, granted, refused('belongs to namespace acme: platform configuration grants it acme.tenants.example.com')],
    ['a namespace\'s own prefix before a grant of the same prefix', 'evil', '', '/default/x', true, granted, refused('belongs to namespace default')],
    ['a longer grant below a /<namespace>/ prefix wins', 'docs', '', '/default/docs/v1', true, granted, allowed(true)],
    ['... and refuses the namespace itself there', 'default', '', '/default/docs', true, granted, refused('belongs to namespace docs: platform configuration grants it /default/docs')],
    ['grants only: its own prefix', 'team', '', '/team/x', true, only, allowed(true)],
    ['grants only: its grant', 'evil', '', '/hello/admin', false, only, allowed(true)],
    ['grants only: anything else is refused, saying what it may use', 'evil', '', '/elsewhere', false, only, refused('is outside what platform configuration lets namespace evil use: paths under /evil/, /hello/admin, /default')],
    ['grants only: a namespace without grants', 'team', 'a.example.com', '/', false, only, refused('is outside what platform configuration lets namespace team use: paths under /team/')],
    ['grants only: another namespace\'s grant names its owner', 'team', 'shop.example.com', '/x', false, only, refused('belongs to namespace shop: platform configuration grants it shop.example.com')],
  ])('%s', (_case, namespace, host, path, firstSegmentIsNamespace, policy, decision) => {
    expect(decidePath({ namespace, host, path, firstSegmentIsNamespace }, policy)).toEqual(decision);
  });
});

describe('firstPathSegment', () => {
  it.each([
    ['/shop/cart', 'shop'],
    ['/shop', 'shop'],
    ['/', undefined],
  ])('%s -> %s', (path, segment) => {
    expect(firstPathSegment(path)).toBe(segment);
  });
});

describe('isNamespaceName', () => {
  it.each([
    ['default', true],
    ['kube-system', true],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
    ['Shop', false],
    ['shop.v1', false],
    ['-shop', false],
    ['_x', false],
  ])('%s: %s', (name, expected) => {
    expect(isNamespaceName(name)).toBe(expected);
  });
});

describe('formatGrant', () => {
  it.each([
    [{ host: '', pathPrefix: '/x' }, '/x'],
    [{ host: 'a.example.com', pathPrefix: '/' }, 'a.example.com'],
    [{ host: 'a.example.com', pathPrefix: '/x' }, 'a.example.com/x'],
  ])('%j -> %s', (grant, text) => {
    expect(formatGrant(grant)).toBe(text);
  });
});
