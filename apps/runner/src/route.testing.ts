import type { RouteRecord } from '@kublambda/route-table';

/** A route record for tests, in namespace "ns"; override any field. */
export function testRoute(name: string, pathPrefix: string, overrides: Partial<RouteRecord> = {}): RouteRecord {
  return {
    key: `ns/${name}`, namespace: 'ns', name, pathPrefix,
    artifact: { digest: `sha256:${'a'.repeat(64)}`, size: 1 }, runtime: 'nodejs',
    timeoutSeconds: 30, memoryMiB: 128, concurrency: 50, cpuMillis: 10_000, network: 'outbound', stateTables: [], env: [], generation: 1,
    ...overrides,
  };
}
