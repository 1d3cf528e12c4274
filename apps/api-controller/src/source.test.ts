import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { resolveSource, sourceDigest, SourceUnavailableError } from './source.ts';

const lambda = (spec: Partial<Lambda['spec']>): Lambda => ({
  apiVersion: 'kublambda.io/v1alpha1',
  kind: 'Lambda',
  metadata: { namespace: 'shop', name: 'orders' },
  spec: { source: {}, ...spec } as Lambda['spec'],
});
const noConfigMaps = async () => undefined;

describe('resolveSource', () => {
  it('puts inline source under the entrypoint name', async () => {
    expect(await resolveSource(lambda({ source: { inline: 'x' }, entrypoint: 'main.js' }), noConfigMaps)).toEqual({
      files: { 'main.js': 'x' }, entrypoint: 'main.js', typeCheck: false, runtime: 'nodejs',
    });
  });

  it('takes files and build options as given, with defaults', async () => {
    const source = await resolveSource(lambda({ source: { files: { 'index.ts': 'a', 'lib/b.ts': 'b' } }, build: { typeCheck: true } }), noConfigMaps);
    expect(source).toEqual({ files: { 'index.ts': 'a', 'lib/b.ts': 'b' }, entrypoint: 'index.ts', typeCheck: true, runtime: 'nodejs' });
  });

  it('reads a ConfigMap in the lambda namespace', async () => {
    const read = async (namespace: string, name: string) => (namespace === 'shop' && name === 'src' ? { 'index.ts': 'cm' } : undefined);
    expect((await resolveSource(lambda({ source: { configMapRef: { name: 'src' } } }), read)).files).toEqual({ 'index.ts': 'cm' });
  });

  it.each([
    ['a missing ConfigMap', { source: { configMapRef: { name: 'gone' } } }, 'SourceNotFound', 'ConfigMap shop/gone named in spec.source.configMapRef does not exist'],
    ['a ConfigMap without the entrypoint', { source: { configMapRef: { name: 'src' } }, entrypoint: 'main.ts' }, 'SourceNotFound', 'ConfigMap shop/src has no key "main.ts" (spec.entrypoint); its keys: index.ts'],
    ['an archive', { source: { archive: { url: 's3://b/k.tgz' } } }, 'SourceUnsupported', 'spec.source.archive is not supported yet'],
  ])('refuses %s with a reason', async (_case, spec, reason, message) => {
    const read = async (_ns: string, name: string) => (name === 'src' ? { 'index.ts': 'cm' } : undefined);
    const error = await resolveSource(lambda(spec as Partial<Lambda['spec']>), read).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect(error).toMatchObject({ reason, message: expect.stringContaining(message) });
  });
});

describe('sourceDigest', () => {
  const base = { files: { 'a.ts': '1', 'b.ts': '2' }, entrypoint: 'a.ts', typeCheck: false, runtime: 'nodejs' as const };
  it('ignores the order of files', () => {
    expect(sourceDigest(base)).toBe(sourceDigest({ ...base, files: { 'b.ts': '2', 'a.ts': '1' } }));
    expect(sourceDigest(base)).toMatch(/^sha256:[a-f0-9]{64}$/);
  });
  it.each([
    ['a file', { files: { 'a.ts': '1', 'b.ts': '3' } }],
    ['a file name', { files: { 'a.ts': '1', 'c.ts': '2' } }],
    ['the entrypoint', { entrypoint: 'b.ts' }],
    ['type checking', { typeCheck: true }],
  ])('changes with %s', (_what, change) => {
    expect(sourceDigest({ ...base, ...change })).not.toBe(sourceDigest(base));
  });
});
