import { describe, expect, it } from '@jest/globals';
import { sha256Digest } from './digest.ts';
import { appendLayer, imageFromLayers, mergeEnv, pickPlatformManifest, type ImageManifestJson } from './image-data.ts';
import { DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const baseConfig = Buffer.from(
  JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '2024-05-01T00:00:00Z',
    config: { Env: ['PATH=/usr/bin', 'LANG=C'], Cmd: ['node'], WorkingDir: '/srv' },
    rootfs: { type: 'layers', diff_ids: [d('1')] },
    history: [{ created: '2024-05-01T00:00:00Z', created_by: 'base' }],
  }),
);
const baseManifest: ImageManifestJson = {
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST,
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256Digest(baseConfig), size: baseConfig.length },
  layers: [{ mediaType: DOCKER_LAYER_GZIP, digest: d('b'), size: 10 }],
};
const layer = { descriptor: { mediaType: OCI_LAYER_GZIP, digest: d('c'), size: 20 }, diffId: d('2') };

describe('appendLayer', () => {
  const image = appendLayer(baseManifest, baseConfig, layer, { entrypoint: ['/usr/local/bin/node'], env: { PATH: '/usr/local/bin', PORT: '8080' }, cmd: ['/app/main.mjs'] });
  const config = JSON.parse(image.config.toString());
  const manifest = JSON.parse(image.manifest.toString());

  it('appends the diff id and a history entry, sets entrypoint, cmd and merged env, at the epoch', () => {
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [d('1'), d('2')] });
    expect(config.history).toEqual([{ created: '2024-05-01T00:00:00Z', created_by: 'base' }, { created: '1970-01-01T00:00:00Z', created_by: 'kublambda: files added' }]);
    expect(config.created).toBe('1970-01-01T00:00:00Z');
    expect(config.config).toEqual({ Env: ['PATH=/usr/local/bin', 'LANG=C', 'PORT=8080'], Entrypoint: ['/usr/local/bin/node'], Cmd: ['/app/main.mjs'], WorkingDir: '/srv' });
    expect([config.os, config.architecture]).toEqual(['linux', 'amd64']);
  });

  it('writes an OCI manifest of the base layers (as OCI types) and the new one', () => {
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: image.configDigest, size: image.config.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: d('b'), size: 10 }, layer.descriptor],
    });
    expect(image.manifestDigest).toBe(sha256Digest(image.manifest));
    expect(image.configDigest).toBe(sha256Digest(image.config));
  });

  it('is reproducible, and drops the base Cmd when no cmd is given', () => {
    const again = appendLayer(baseManifest, baseConfig, layer, { entrypoint: ['/usr/local/bin/node'], env: { PORT: '8080', PATH: '/usr/local/bin' }, cmd: ['/app/main.mjs'] });
    expect(again.manifestDigest).toBe(image.manifestDigest);
    const noCmd = JSON.parse(appendLayer(baseManifest, baseConfig, layer, { entrypoint: ['/x'] }).config.toString());
    expect(noCmd.config.Cmd).toBeUndefined();
    expect(appendLayer(baseManifest, baseConfig, layer, { entrypoint: ['/x'], created: '2026-01-01T00:00:00Z' }).manifestDigest).not.toBe(image.manifestDigest);
  });

  it('refuses a config that does not match its manifest, and layers it cannot copy', () => {
    expect(() => appendLayer({ ...baseManifest, layers: [] }, baseConfig, layer, { entrypoint: ['/x'] })).toThrow(/1 diff ids for 0 layers/);
    const foreign = { ...baseManifest, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('b'), size: 1 }] };
    expect(() => appendLayer(foreign, baseConfig, layer, { entrypoint: ['/x'] })).toThrow(/does not copy/);
  });
});

describe('user and labels', () => {
  it('are set by imageFromLayers, labels in name order, and absent unless given', () => {
    const settings = { entrypoint: ['/x'], user: '65532:65532', labels: { 'org.opencontainers.image.title': 't', 'org.opencontainers.image.source': 's' } };
    const config = JSON.parse(imageFromLayers([layer], settings).config.toString());
    expect(config.config).toEqual({ Env: [], Entrypoint: ['/x'], User: '65532:65532', Labels: { 'org.opencontainers.image.source': 's', 'org.opencontainers.image.title': 't' } });
    expect(Object.keys(config.config.Labels)).toEqual(['org.opencontainers.image.source', 'org.opencontainers.image.title']);
    expect(JSON.parse(imageFromLayers([layer], { entrypoint: ['/x'] }).config.toString()).config).toEqual({ Env: [], Entrypoint: ['/x'] });
  });

  it('are merged over the base by appendLayer; the base user stays unless replaced', () => {
    const labelled = Buffer.from(JSON.stringify({ ...JSON.parse(baseConfig.toString()), config: { User: '1000', Labels: { b: 'base', a: 'base' } } }));
    const manifest = { ...baseManifest, config: { ...baseManifest.config, digest: sha256Digest(labelled), size: labelled.length } };
    const kept = JSON.parse(appendLayer(manifest, labelled, layer, { entrypoint: ['/x'] }).config.toString()).config;
    expect([kept.User, kept.Labels]).toEqual(['1000', { b: 'base', a: 'base' }]);
    const replaced = JSON.parse(appendLayer(manifest, labelled, layer, { entrypoint: ['/x'], user: '65532', labels: { b: 'new', c: 'new' } }).config.toString()).config;
    expect([replaced.User, replaced.Labels]).toEqual(['65532', { a: 'base', b: 'new', c: 'new' }]);
  });
});

describe('mergeEnv', () => {
  it.each([
    [[], {}, []],
    [['A=1', 'B=2'], { B: '3' }, ['A=1', 'B=3']],
    [['A=1'], { Z: '1', C: 'x=y' }, ['A=1', 'C=x=y', 'Z=1']],
    [['A=1=2'], { A: '' }, ['A=']],
  ])('%j + %j', (base, env, expected) => {
    expect(mergeEnv(base, env)).toEqual(expected);
  });
  it('refuses names with =', () => expect(() => mergeEnv([], { 'A=B': '1' })).toThrow(/not an environment variable name/));
});

describe('pickPlatformManifest', () => {
  const entry = (os: string, architecture: string, c: string) => ({ mediaType: OCI_MANIFEST, digest: d(c), size: 1, platform: { os, architecture } });
  it('picks linux/amd64', () => {
    expect(pickPlatformManifest({ schemaVersion: 2, manifests: [entry('linux', 'arm64', 'a'), entry('linux', 'amd64', 'b')] }).digest).toBe(d('b'));
  });
  it('refuses an index without it, naming what it has', () => {
    expect(() => pickPlatformManifest({ schemaVersion: 2, manifests: [entry('linux', 'arm64', 'a'), entry('windows', 'amd64', 'b')] })).toThrow(
      'without a linux/amd64 image (it has: linux/arm64, windows/amd64)',
    );
  });
});
