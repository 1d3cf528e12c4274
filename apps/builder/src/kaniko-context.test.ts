import { describe, expect, it } from '@jest/globals';
import { readImageLayer } from '@kublambda/oci-image';
import { createKanikoContext, kanikoDockerfile } from './kaniko-context.ts';

const files = {
  '/lambda/lambda.mjs': { bytes: Buffer.from('export default () => new Response("hi")'), mode: 0o644 },
  '/lambda/lambda.json': { bytes: Buffer.from('{"name":"hello"}'), mode: 0o644 },
};

describe('kanikoDockerfile', () => {
  it('copies each file to its place, from the base, and runs nothing', () => {
    expect(kanikoDockerfile('registry:5000/kublambda/runner-base:v1', Object.keys(files))).toBe(
      'FROM registry:5000/kublambda/runner-base:v1\nCOPY lambda/lambda.json /lambda/lambda.json\nCOPY lambda/lambda.mjs /lambda/lambda.mjs\n',
    );
  });

  it.each([
    ['a base with a space', 'runner base', ['/a'], 'is not an image reference'],
    ['an empty base', '', ['/a'], 'is not an image reference'],
    ['a relative path', 'base:v1', ['lambda.json'], 'is not a plain absolute file path'],
    ['a path with ..', 'base:v1', ['/lambda/../etc/passwd'], 'is not a plain absolute file path'],
    ['a path a Dockerfile line would split', 'base:v1', ['/my file'], 'is not a plain absolute file path'],
    ['the Dockerfile itself', 'base:v1', ['/Dockerfile'], 'is not a plain absolute file path'],
  ])('refuses %s', (_, base, paths, message) => {
    expect(() => kanikoDockerfile(base, paths)).toThrow(message);
  });
});

describe('createKanikoContext', () => {
  it('is a tar.gz of the Dockerfile and the files, the same bytes every time', () => {
    const context = createKanikoContext('registry:5000/runner:v1', files);
    expect(createKanikoContext('registry:5000/runner:v1', { ...files }).digest).toBe(context.digest);
    const entries = readImageLayer(context.archive);
    expect(entries.map((entry) => [entry.path, entry.typeFlag, entry.mode, entry.uid, entry.mtime])).toEqual([
      ['Dockerfile', '0', 0o644, 0, 0],
      ['lambda', '5', 0o755, 0, 0],
      ['lambda/lambda.json', '0', 0o644, 0, 0],
      ['lambda/lambda.mjs', '0', 0o644, 0, 0],
    ]);
    expect(entries[0]!.bytes.toString()).toContain('FROM registry:5000/runner:v1\n');
    expect(entries[3]!.bytes).toEqual(files['/lambda/lambda.mjs'].bytes);
  });

  it('differs for another base', () => {
    expect(createKanikoContext('registry:5000/runner:v2', files).digest).not.toBe(createKanikoContext('registry:5000/runner:v1', files).digest);
  });
});
