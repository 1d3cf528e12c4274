import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { tablesToDelete } from './state-retention.ts';

const source = { inline: 'export default () => new Response("x")' };

function lambda(
  name: string,
  stateTables: string[] | undefined,
  options: { retention?: 'Retain' | 'Delete'; namespace?: string; deleting?: boolean } = {},
): Lambda {
  return {
    apiVersion: 'kublambda.io/v1alpha1',
    kind: 'Lambda',
    metadata: { name, namespace: options.namespace ?? 'shop', ...(options.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { source, ...(stateTables ? { stateTables } : {}), ...(options.retention ? { stateRetention: options.retention } : {}) },
  } as Lambda;
}

const deleted = (stateTables: string[] | undefined, retention?: 'Retain' | 'Delete') => lambda('a', stateTables, { retention, deleting: true });

describe('tablesToDelete', () => {
  it.each<[string, Lambda, Lambda[], string[]]>([
    ['retention not set: Retain is the default', deleted(['orders']), [], []],
    ['Retain', deleted(['orders'], 'Retain'), [], []],
    ['Delete without tables', deleted(undefined, 'Delete'), [], []],
    ['Delete, no other lambda', deleted(['orders', 'carts'], 'Delete'), [], ['orders', 'carts']],
    ['Delete, the deleted lambda itself in the list', deleted(['orders'], 'Delete'), [deleted(['orders'], 'Delete')], ['orders']],
    ['Delete, another lambda declares one of them', deleted(['shared', 'own'], 'Delete'), [lambda('b', ['shared'])], ['own']],
    ['Delete, another lambda declares all of them', deleted(['shared', 'own'], 'Delete'), [lambda('b', ['own', 'x']), lambda('c', ['shared'])], []],
    ['Delete, another lambda without tables', deleted(['orders'], 'Delete'), [lambda('b', undefined)], ['orders']],
    ['Delete, the same table name in another namespace', deleted(['orders'], 'Delete'), [lambda('b', ['orders'], { namespace: 'other' })], ['orders']],
    ['Delete, one being deleted with Delete too', deleted(['shared'], 'Delete'), [lambda('b', ['shared'], { retention: 'Delete', deleting: true })], ['shared']],
    ['Delete, one being deleted with Retain', deleted(['shared'], 'Delete'), [lambda('b', ['shared'], { retention: 'Retain', deleting: true })], []],
    ['Delete, one being deleted with the default retention', deleted(['shared'], 'Delete'), [lambda('b', ['shared'], { deleting: true })], []],
  ])('%s', (_case, lambdaDeleted, others, expected) => {
    expect(tablesToDelete(lambdaDeleted, others)).toEqual(expected);
  });
});
