import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UsageError } from './command-line.ts';
import { chooseEntrypoint, lambdaForDeploy, parseEnvAssignment, parseManifest, readDeploySource, type DeployOptions } from './deploy-source.ts';
import { initFiles } from './init-command.ts';

const none: DeployOptions = { env: [] };
const manifest = (spec: Record<string, unknown>, name = 'orders') => parseManifest(`apiVersion: kublambda.io/v1alpha1\nkind: Lambda\nmetadata: {name: ${name}}\nspec: ${JSON.stringify(spec)}\n`, 'lambda.yaml');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-deploy-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lambdaForDeploy', () => {
  it('makes a file spec.source.inline under its own name, with an HTTP trigger, named after the file', () => {
    expect(lambdaForDeploy({ kind: 'file', file: '/x/hello.ts', content: 'export default () => new Response("hi")' }, none)).toEqual({
      apiVersion: 'kublambda.io/v1alpha1',
      kind: 'Lambda',
      metadata: { name: 'hello' },
      spec: { source: { inline: 'export default () => new Response("hi")' }, entrypoint: 'hello.ts', triggers: { http: {} } },
    });
  });

  it('puts the options on top: name, path, host, memory, timeout, env (replacing one of the same name), type checking', () => {
    const lambda = lambdaForDeploy(
      { kind: 'manifest', manifestFile: 'lambda.yaml', manifest: manifest({ source: { inline: 'x' }, env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], triggers: { http: { path: '/old' } } }) },
      { name: 'renamed', path: '/new', host: 'api.example.com', memory: 256, timeout: 60, env: ['B=3', 'C=x=y'], typeCheck: true },
    );
    expect(lambda.metadata).toEqual({ name: 'renamed' });
    expect(lambda.spec).toEqual({
      source: { inline: 'x' },
      env: [{ name: 'A', value: '1' }, { name: 'B', value: '3' }, { name: 'C', value: 'x=y' }],
      triggers: { http: { path: '/new', host: 'api.example.com' } },
      memoryMiB: 256,
      timeoutSeconds: 60,
      build: { typeCheck: true },
    });
  });

  it('applies a manifest with its own source as it is (no trigger added), without namespace or resourceVersion', () => {
    const m = manifest({ source: { configMapRef: { name: 'code' } } });
    m.metadata.namespace = 'elsewhere';
    m.metadata.resourceVersion = '42';
    m.metadata.labels = { team: 'a' };
    expect(lambdaForDeploy({ kind: 'directory', dir: '/x/orders', files: { 'index.ts': 'y' }, manifest: m }, none)).toEqual({
      apiVersion: 'kublambda.io/v1alpha1',
      kind: 'Lambda',
      metadata: { name: 'orders', labels: { team: 'a' } },
      spec: { source: { configMapRef: { name: 'code' } } },
    });
  });

  it("fills a directory manifest's missing spec.source with the directory's files", () => {
    const lambda = lambdaForDeploy({ kind: 'directory', dir: '/x/whatever', files: { 'handler.ts': 'h', 'package.json': '{}' }, manifest: manifest({ entrypoint: 'handler.ts', build: { typeCheck: true } }) }, none);
    expect(lambda.metadata.name).toBe('orders');
    expect(lambda.spec).toEqual({ source: { files: { 'handler.ts': 'h', 'package.json': '{}' } }, entrypoint: 'handler.ts', build: { typeCheck: true } });
  });

  it('names a directory without a manifest after itself and finds its entrypoint', () => {
    const lambda = lambdaForDeploy({ kind: 'directory', dir: '/x/shop-api', files: { 'lib/a.ts': 'a', 'index.ts': 'i' } }, none);
    expect(lambda.metadata.name).toBe('shop-api');
    expect(lambda.spec).toEqual({ source: { files: { 'lib/a.ts': 'a', 'index.ts': 'i' } }, entrypoint: 'index.ts', triggers: { http: {} } });
  });

  it.each([
    [{ kind: 'file', file: '/x/Hello_World.ts', content: 'x' }, none, '"Hello_World" cannot name a Lambda'],
    [{ kind: 'file', file: '/x/a.ts', content: 'x' }, { env: ['no-equals'] }, '--env takes NAME=VALUE, not "no-equals"'],
    [{ kind: 'directory', dir: '/x/empty', files: {} }, none, '/x/empty: no source files'],
    [{ kind: 'directory', dir: '/x/two', files: { 'a.ts': '', 'b.ts': '' } }, none, 'which file is the handler?'],
  ] as const)('refuses %j with %j', (source, options, message) => {
    expect(() => lambdaForDeploy(source as never, options as DeployOptions)).toThrow(UsageError);
    expect(() => lambdaForDeploy(source as never, options as DeployOptions)).toThrow(message);
  });
});

describe('chooseEntrypoint, parseEnvAssignment, parseManifest', () => {
  it('prefers index.ts, then handler.ts, then the only code file', () => {
    expect(chooseEntrypoint({ 'handler.ts': '', 'index.ts': '' }, 'd')).toBe('index.ts');
    expect(chooseEntrypoint({ 'handler.ts': '', 'package.json': '' }, 'd')).toBe('handler.ts');
    expect(chooseEntrypoint({ 'main.mjs': '', 'package.json': '' }, 'd')).toBe('main.mjs');
  });
  it('splits at the first =', () => {
    expect(parseEnvAssignment('A=b=c')).toEqual(['A', 'b=c']);
    expect(parseEnvAssignment('EMPTY=')).toEqual(['EMPTY', '']);
  });
  it('wants one Lambda', () => {
    expect(() => parseManifest('apiVersion: v1\nkind: ConfigMap\n', 'f.yaml')).toThrow('f.yaml: expected apiVersion kublambda.io/v1alpha1 and kind Lambda, found v1 ConfigMap');
    expect(() => parseManifest('a: [\n', 'f.yaml')).toThrow('f.yaml: not valid YAML');
    expect(() => parseManifest('kind: Lambda\n---\nkind: Lambda\n', 'f.yaml')).toThrow('expected one Lambda, found 2 documents');
  });
});

describe('readDeploySource', () => {
  it('reads what init made: the manifest and the code, not the README', async () => {
    const project = path.join(dir, 'made');
    await mkdir(path.join(project, 'node_modules/x'), { recursive: true });
    for (const [file, content] of Object.entries(initFiles('made', 'http'))) await writeFile(path.join(project, file), content);
    await writeFile(path.join(project, 'node_modules/x/index.js'), 'skipped');
    await writeFile(path.join(project, '.env'), 'skipped');
    const source = await readDeploySource(project);
    expect(source.kind).toBe('directory');
    const lambda = lambdaForDeploy(source, none);
    expect(lambda.metadata.name).toBe('made');
    expect(Object.keys(lambda.spec.source.files!)).toEqual(['handler.ts']);
    expect(lambda.spec).toMatchObject({ entrypoint: 'handler.ts', build: { typeCheck: true }, triggers: { http: {} } });
  });

  it('reads a single file and a manifest file; refuses what is neither', async () => {
    await writeFile(path.join(dir, 'one.mjs'), 'export default () => new Response("1")');
    expect(await readDeploySource(path.join(dir, 'one.mjs'))).toEqual({ kind: 'file', file: path.join(dir, 'one.mjs'), content: 'export default () => new Response("1")' });
    await writeFile(path.join(dir, 'l.yaml'), 'apiVersion: kublambda.io/v1alpha1\nkind: Lambda\nmetadata: {name: l}\nspec: {source: {inline: x}}\n');
    expect((await readDeploySource(path.join(dir, 'l.yaml'))).kind).toBe('manifest');
    await writeFile(path.join(dir, 'notes.txt'), '');
    await expect(readDeploySource(path.join(dir, 'notes.txt'))).rejects.toThrow('deploy takes a');
    await expect(readDeploySource(path.join(dir, 'missing'))).rejects.toThrow('no such file or directory');
  });
});
