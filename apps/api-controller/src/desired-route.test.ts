import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { describeClaimConflict, desiredRoute } from './desired-route.ts';

function lambda(spec: Partial<Lambda['spec']>): Lambda {
  return {
    apiVersion: 'kublambda.io/v1alpha1',
    kind: 'Lambda',
    metadata: { name: 'hello', namespace: 'shop', generation: 4 },
    spec: { source: { inline: 'export default () => new Response("hi")' }, ...spec },
  } as Lambda;
}

const artifact = { digest: `sha256:${'c'.repeat(64)}`, size: 10 };

describe('desiredRoute', () => {
  it("carries the lambda's limits, network and CPU budget, with the CRD's defaults where the spec has none", () => {
    expect(desiredRoute(lambda({}), artifact, [])).toMatchObject({
      key: 'shop/hello', pathPrefix: '/shop/hello', timeoutSeconds: 30, memoryMiB: 128, concurrency: 50, cpuMillis: 10_000, network: 'outbound', generation: 4,
    });
    expect(desiredRoute(lambda({ network: 'none', cpuMillis: 250, memoryMiB: 64 }), artifact, [])).toMatchObject({ network: 'none', cpuMillis: 250, memoryMiB: 64 });
  });
});

describe('describeClaimConflict', () => {
  const at = (path: string, host?: string) => lambda({ triggers: { http: { path, ...(host ? { host } : {}) } } });
  it.each([
    ['the same path, same namespace: the holder by name', at('/cart/'), { holder: 'shop/basket', heldClaim: '/cart' }, 'path /cart/ (any host) is held by lambda shop/basket'],
    ['the same path, another namespace: only its namespace', at('/cart'), { holder: 'evil/x', heldClaim: '/cart' }, 'path /cart (any host) is held by a lambda of namespace evil'],
    ['a path above, another namespace', at('/hello/admin'), { holder: 'default/hello', heldClaim: '/hello' }, 'path /hello/admin (any host) is below /hello, held by a lambda of namespace default'],
    ['on a host', at('/a/b', 'api.example.com'), { holder: 'default/root', heldClaim: 'api.example.com/' }, 'host api.example.com path /a/b is below /, held by a lambda of namespace default'],
  ])('%s', (_case, requester, conflict, message) => {
    expect(describeClaimConflict(requester, conflict)).toBe(message);
  });
});
