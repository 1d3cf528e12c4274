import type { Lambda } from '@kublambda/crd-types';

/**
 * The state tables to delete with a lambda that is going away: none unless its
 * stateRetention is Delete, and none that another lambda of its namespace still declares.
 *
 * A lambda that is itself being deleted with Delete does not count: lambdas deleted together
 * (an application torn down) would otherwise each keep a shared table for the other, and it
 * would outlive them all. One being deleted with Retain still counts: it asked for its tables
 * to be kept.
 */
export function tablesToDelete(deleted: Lambda, lambdas: readonly Lambda[]): string[] {
  if (deleted.spec.stateRetention !== 'Delete') return [];
  const { namespace, name } = deleted.metadata;
  const stillDeclared = new Set(
    lambdas
      .filter((other) => other.metadata.namespace === namespace && other.metadata.name !== name)
      .filter((other) => !(other.metadata.deletionTimestamp && other.spec.stateRetention === 'Delete'))
      .flatMap((other) => other.spec.stateTables ?? []),
  );
  return (deleted.spec.stateTables ?? []).filter((table) => !stillDeclared.has(table));
}
