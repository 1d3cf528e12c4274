import { describe, expect, it } from '@jest/globals';
import { routeClaim } from './route-claims.ts';

describe('routeClaim', () => {
  it.each([
    [undefined, '/hello', '/hello'],
    [undefined, '/hello/', '/hello'],
    ['', '/hello', '/hello'],
    [undefined, '/', '/'],
    ['api.example.com', '/hello', 'api.example.com/hello'],
    ['api.example.com', '/', 'api.example.com/'],
    ['*.example.com', '/a/b/', '*.example.com/a/b'],
  ])('host %s and path %s claim %s', (host, path, claim) => {
    expect(routeClaim(host, path)).toBe(claim);
  });
});
