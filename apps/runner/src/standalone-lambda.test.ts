import { describe, expect, it } from '@jest/globals';
import { digestOf } from '@kublambda/artifact-store';
import type { StandaloneLambda } from '@kublambda/route-table';
import { localAsset, parseStandaloneLambda, standaloneAssetPath, verifyStandaloneAsset } from './standalone-lambda.ts';

const FILE = '/lambda/lambda.json';
const asset = Buffer.from('export default async () => new Response("hi")');
const lambda: StandaloneLambda = {
  namespace: 'shop', name: 'hello', artifact: { digest: digestOf(asset), size: asset.byteLength }, runtime: 'nodejs',
  timeoutSeconds: 5, memoryMiB: 128, concurrency: 10, cpuMillis: 2000, network: 'none', stateTables: ['carts'],
};
const text = (overrides: Record<string, unknown> = {}) => JSON.stringify({ ...lambda, ...overrides });

describe('parseStandaloneLambda', () => {
  it('reads the route settings lambda.json holds', () => {
    expect(parseStandaloneLambda(text(), FILE)).toEqual(lambda);
  });

  it.each([
    ['not JSON', '{', '/lambda/lambda.json: not JSON'],
    ['not an object', '[]', '/lambda/lambda.json: expected a JSON object'],
    ['a missing name', text({ name: undefined }), '/lambda/lambda.json: name must be a non-empty string, not missing'],
    ['an empty namespace', text({ namespace: '' }), '/lambda/lambda.json: namespace must be a non-empty string, not ""'],
    ['a malformed digest', text({ artifact: { digest: 'sha256:abc', size: 1 } }), '/lambda/lambda.json: artifact.digest must be "sha256:" followed by 64 lowercase hex digits, not "sha256:abc"'],
    ['a missing size', text({ artifact: { digest: lambda.artifact.digest } }), '/lambda/lambda.json: artifact.size must be a whole number of bytes, not missing'],
    ['no artifact', text({ artifact: null }), '/lambda/lambda.json: artifact must be an object { digest, size }, not null'],
    ['another runtime', text({ runtime: 'python' }), '/lambda/lambda.json: runtime must be "nodejs", not "python"'],
    ['a zero timeout', text({ timeoutSeconds: 0 }), '/lambda/lambda.json: timeoutSeconds must be a whole number of at least 1, not 0'],
    ['a fractional memory', text({ memoryMiB: 1.5 }), '/lambda/lambda.json: memoryMiB must be a whole number of at least 1, not 1.5'],
    ['an unknown network', text({ network: 'all' }), '/lambda/lambda.json: network must be "outbound" or "none", not "all"'],
    ['state tables not names', text({ stateTables: [1] }), '/lambda/lambda.json: stateTables must be an array of table names, not [1]'],
    ['env in the file', text({ env: [] }), '/lambda/lambda.json: env does not belong in lambda.json'],
    ['a path prefix in the file', text({ pathPrefix: '/x' }), '/lambda/lambda.json: pathPrefix does not belong in lambda.json'],
    ['an unknown field', text({ memory: 1 }), '/lambda/lambda.json: unknown field memory'],
  ])('refuses %s, naming the file and the field', (_, given, message) => {
    expect(() => parseStandaloneLambda(given, FILE)).toThrow(message);
  });
});

describe('verifyStandaloneAsset', () => {
  it('accepts the asset lambda.json names', () => {
    expect(() => verifyStandaloneAsset(asset, lambda.artifact, '/lambda/lambda.mjs')).not.toThrow();
  });

  it('refuses other bytes, with both digests', () => {
    const other = Buffer.from('export default async () => new Response("other")');
    expect(() => verifyStandaloneAsset(other, lambda.artifact, '/lambda/lambda.mjs')).toThrow(
      `/lambda/lambda.mjs: its digest is ${digestOf(other)}, but lambda.json names artifact.digest ${lambda.artifact.digest}`,
    );
  });

  it('refuses a size lambda.json does not name', () => {
    expect(() => verifyStandaloneAsset(asset, { ...lambda.artifact, size: 1 }, '/lambda/lambda.mjs')).toThrow(`it has ${asset.byteLength} bytes, but lambda.json names artifact.size 1`);
  });
});

describe('the asset beside lambda.json', () => {
  it('is lambda.mjs in the same directory', () => {
    expect(standaloneAssetPath('/lambda/lambda.json')).toBe('/lambda/lambda.mjs');
    expect(standaloneAssetPath('/tmp/x/settings.json')).toBe('/tmp/x/lambda.mjs');
  });

  it('is the only asset served', async () => {
    const source = localAsset(lambda.artifact.digest, '/lambda/lambda.mjs');
    expect(await source.path(lambda.artifact.digest)).toBe('/lambda/lambda.mjs');
    await expect(source.path(`sha256:${'b'.repeat(64)}`)).rejects.toThrow('the standalone runner holds only');
    expect(() => source.pin(lambda.artifact.digest)()).not.toThrow();
  });
});
