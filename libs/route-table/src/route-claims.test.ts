import { describe, expect, it } from '@jest/globals';
import { ancestorClaims, claimParts, isClaimAtOrBelow, routeClaim } from './route-claims.ts';

describe('routeClaim', () => {
  it.each([
    [undefined, '/hello', '/hello'],
    [undefined, '/hello/', '/hello'],
    ['', '/hello', '/hello'],
    [undefined, '/', '/'],
    [undefined, '', '/'],
    ['api.example.com', '/hello', 'api.example.com/hello'],
    ['api.example.com', '/', 'api.example.com/'],
    ['*.example.com', '/a/b/', '*.example.com/a/b'],
  ])('host %s and path %s claim %s', (host, path, claim) => {
    expect(routeClaim(host, path)).toBe(claim);
  });
});

describe('claimParts', () => {
  it.each([
    ['/hello/x', { host: '', path: '/hello/x' }],
    ['/', { host: '', path: '/' }],
    ['api.example.com/', { host: 'api.example.com', path: '/' }],
    ['*.example.com/a/b', { host: '*.example.com', path: '/a/b' }],
  ])('%s', (claim, parts) => {
    expect(claimParts(claim)).toEqual(parts);
  });
});

describe('ancestorClaims', () => {
  it.each([
    ['/a/b/c', ['/a/b', '/a', '/']],
    ['/a', ['/']],
    ['/', []],
    ['api.example.com/a/b', ['api.example.com/a', 'api.example.com/']],
    ['api.example.com/', []],
  ])('%s -> %j', (claim, ancestors) => {
    expect(ancestorClaims(claim)).toEqual(ancestors);
  });
});

describe('isClaimAtOrBelow', () => {
  it.each([
    ['/hello', '/hello', true],
    ['/hello/admin', '/hello', true],
    ['/hello/admin/x', '/hello', true],
    ['/anything', '/', true],
    ['/helloworld', '/hello', false],
    ['/hello', '/hello/admin', false],
    ['a.example.com/hello/x', 'a.example.com/hello', true],
    ['a.example.com/hello/x', '/hello', false],
    ['/hello/x', 'a.example.com/hello', false],
    ['b.example.com/x', 'a.example.com/', false],
  ])('%s under %s: %s', (claim, above, expected) => {
    expect(isClaimAtOrBelow(claim, above)).toBe(expected);
  });
});
