import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startNpmRegistry, type NpmRegistry } from '@kublambda/dev-servers';
import { bundleSource, type SourceBundle } from './bundle-source.ts';
import { CompileError } from './compile-error.ts';

type Handler = (request: Request) => Promise<Response> | Response;

// npm installs from a registry on loopback (libs/dev-servers npm-registry.ts), never the public one.
const npmTimeout = 60_000;

let tempDir: string;
let npmRegistry: NpmRegistry;

beforeAll(async () => {
  npmRegistry = await startNpmRegistry();
});

afterAll(async () => {
  await npmRegistry?.stop();
});

beforeEach(async () => {
  tempDir = await mkdtemp(path.join(tmpdir(), 'bundle-source-'));
});

afterEach(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

/** Bundles in a fresh work dir, as the builder does for each job. */
async function bundleFiles(files: Record<string, string>, { entrypoint = 'index.ts', typeCheck = false } = {}): Promise<SourceBundle> {
  const workDir = await mkdtemp(path.join(tempDir, 'work-'));
  return bundleSource({ files, entrypoint, typeCheck }, { workDir, npmCacheDir: path.join(tempDir, 'npm-cache'), npmRegistry: npmRegistry.url });
}

async function compileError(files: Record<string, string>, settings?: { entrypoint?: string; typeCheck?: boolean }): Promise<CompileError> {
  const error = await bundleFiles(files, settings).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(CompileError);
  return error as CompileError;
}

let loadedAssets = 0;

/** Loads the asset the way the runner does: as an ES module file. */
async function defaultExport(asset: Uint8Array): Promise<unknown> {
  const file = path.join(tempDir, `asset-${++loadedAssets}.mjs`);
  await writeFile(file, asset);
  const module = (await import(pathToFileURL(file).href)) as { default: unknown };
  return module.default;
}

async function respond(asset: Uint8Array, url: string): Promise<string> {
  const handler = (await defaultExport(asset)) as Handler;
  return (await handler(new Request(url))).text();
}

const greetingHandler = `export default async (request: Request): Promise<Response> => {
  const name = new URL(request.url).searchParams.get('name') ?? 'nobody';
  return new Response(\`hello \${name}\`);
};
`;

describe('bundleSource', () => {
  it('bundles an inline TypeScript handler that type-checks against Node types', async () => {
    const bundle = await bundleFiles({ 'index.ts': greetingHandler }, { typeCheck: true });
    expect(await respond(bundle.asset, 'http://x/hello?name=a')).toBe('hello a');
    expect(bundle.warnings).toEqual([]);
  });

  it('bundles a JavaScript entrypoint', async () => {
    const bundle = await bundleFiles({ 'index.js': 'export default async (request) => new Response(`js ${new URL(request.url).pathname}`);\n' }, { entrypoint: 'index.js' });
    expect(await respond(bundle.asset, 'http://x/hello')).toBe('js /hello');
  });

  it('bundles several files joined by relative imports', async () => {
    const files = {
      'index.ts': `import { greet } from './lib/greet.ts';
export default async (request: Request) => new Response(greet(new URL(request.url).searchParams.get('name') ?? ''));
`,
      'lib/greet.ts': 'export const greet = (name: string): string => `hi ${name.toUpperCase()}`;\n',
    };
    const bundle = await bundleFiles(files, { typeCheck: true });
    expect(await respond(bundle.asset, 'http://x/hello?name=a')).toBe('hi A');
  });

  it('accepts an object with a fetch method as the default export', async () => {
    const bundle = await bundleFiles({ 'index.ts': "export default { async fetch(request: Request) { return new Response('fetched ' + new URL(request.url).search); } };\n" });
    const { fetch } = (await defaultExport(bundle.asset)) as { fetch: Handler };
    expect(await (await fetch(new Request('http://x/hello?name=a'))).text()).toBe('fetched ?name=a');
  });

  it("reports a syntax error at its line and character column with esbuild's text", async () => {
    const error = await compileError({ 'index.ts': 'export default async () => {\n  const greeting = "héllo" +;\n  return new Response(greeting);\n};\n' });
    expect(error.reason).toBe('CompileFailed');
    // esbuild counts the column in UTF-8 bytes; "é" is two of them but one character.
    expect(error.diagnostics).toEqual([{ file: 'index.ts', line: 2, column: 29, text: 'Unexpected ";"' }]);
    expect(error.message).toBe('index.ts:2:29: Unexpected ";"');
  });

  it('reports an import that resolves to nothing', async () => {
    const error = await compileError({ 'index.ts': 'import { greet } from "./missing";\nexport default () => new Response(greet());\n' });
    expect(error.reason).toBe('CompileFailed');
    expect(error.message).toBe('index.ts:1:23: Could not resolve "./missing"');
  });

  it('fails on a type error only when typeCheck is on', async () => {
    const files = { 'index.ts': 'export default async () => {\n  const name: string = 42;\n  return new Response(name);\n};\n' };
    expect(await respond((await bundleFiles(files)).asset, 'http://x/')).toBe('42');
    const error = await compileError(files, { typeCheck: true });
    expect(error.reason).toBe('CompileFailed');
    expect(error.message).toBe("index.ts:2:9: Type 'number' is not assignable to type 'string'.");
  });

  it('type-checks a handler against the lambda API it imports with import type', async () => {
    const handler = (put: string) =>
      `import type { Handler } from '@kublambda/lambda-api';\n` +
      `export default (async (request, context) => {\n  ${put}\n  return new Response(context.requestId);\n}) satisfies Handler;\n`;
    const bundle = await bundleFiles({ 'index.ts': handler("await context.state.table('t').put('k', { n: 1 }, { ttlSeconds: 5 });") }, { typeCheck: true });
    expect(bundle.asset.toString()).not.toContain('lambda-api');
    const error = await compileError({ 'index.ts': handler("await context.state.table('t').put('k', { n: 1 }, { ttl: 5 });") }, { typeCheck: true });
    expect(error.reason).toBe('CompileFailed');
    expect(error.message).toMatch(/^index\.ts:3:\d+: Object literal may only specify known properties, and 'ttl' does not exist in type 'PutOptions'\.$/);
  });

  it('bundles readResourceEvent from the lambda API into a lambda that imports it', async () => {
    const source =
      `import { readResourceEvent, NotAResourceEvent } from '@kublambda/lambda-api';\n` +
      `export default async (request: Request) => {\n` +
      `  try {\n` +
      `    const event = await readResourceEvent(request);\n` +
      `    return new Response(\`\${event.type} \${event.subject} \${event.object.metadata?.name} \${event.oldObject?.metadata?.name}\`);\n` +
      `  } catch (error) {\n` +
      `    if (error instanceof NotAResourceEvent) return new Response(error.message, { status: 400 });\n` +
      `    throw error;\n` +
      `  }\n` +
      `};\n`;
    const handler = (await defaultExport((await bundleFiles({ 'index.ts': source }, { typeCheck: true })).asset)) as Handler;
    const event = new Request('http://x/', {
      method: 'POST',
      headers: { 'ce-type': 'io.kublambda.resource.modified', 'ce-id': 'u/2', 'ce-subject': 'shop/settings', 'ce-oldobject': '{%22metadata%22:{%22name%22:%22before%22}}' },
      body: JSON.stringify({ metadata: { name: 'settings' } }),
    });
    expect(await (await handler(event)).text()).toBe('MODIFIED shop/settings settings before');
    const plain = await handler(new Request('http://x/'));
    expect({ status: plain.status, body: await plain.text() }).toEqual({ status: 400, body: 'the request has no ce-type header: it is not a CloudEvent' });
  });

  it('reports type errors in every file the entrypoint imports, relative to the source root', async () => {
    const files = {
      'index.ts': "import { twice } from './lib/twice.ts';\nexport default () => new Response(String(twice('2')));\n",
      'lib/twice.ts': 'export const twice = (n: number): number => n * 2;\nexport const unused: boolean = 1;\n',
    };
    const error = await compileError(files, { typeCheck: true });
    expect(error.diagnostics.map(({ file, line, column }) => `${file}:${line}:${column}`).sort()).toEqual(['index.ts:2:48', 'lib/twice.ts:2:14']);
  });

  it('requires a default export from the entrypoint', async () => {
    const error = await compileError({ 'index.ts': 'export const handler = () => new Response("hi");\n' });
    expect(error.reason).toBe('NoDefaultExport');
    expect(error.message).toContain('index.ts has no default export: export a handler, e.g. export default async (request) => new Response("hi")');
  });

  it('refuses an entrypoint that is not among the files', async () => {
    const error = await compileError({ 'main.ts': greetingHandler });
    expect(error.message).toBe('index.ts:1:1: the entrypoint is not among the source files (main.ts)');
  });

  it('returns esbuild warnings with their location', async () => {
    const bundle = await bundleFiles({ 'index.ts': 'const limits = { max: 1, max: 2 };\nexport default () => new Response(String(limits.max));\n' });
    expect(bundle.warnings).toEqual(['index.ts:1:26: Duplicate key "max" in object literal']);
  });

  it(
    'installs the npm dependencies of a package.json and bundles them',
    async () => {
      const files = {
        'package.json': JSON.stringify({ dependencies: { 'escape-html': '1.0.3' } }),
        'index.ts': `import escapeHtml from 'escape-html';
export default async (request: Request) => new Response(escapeHtml(new URL(request.url).searchParams.get('name') ?? ''));
`,
      };
      const bundle = await bundleFiles(files);
      expect(await respond(bundle.asset, 'http://x/hello?name=%3Cb%3E')).toBe('&lt;b&gt;');
      expect(Buffer.from(bundle.asset).toString()).toContain('// node_modules/escape-html/index.js');
    },
    npmTimeout,
  );

  it.each([
    ['a package that does not exist', 'kublambda-no-such-package-4e1f', '1.0.0', 'E404'],
    ['a version that does not exist', 'escape-html', '99.0.0', 'ETARGET'],
  ])(
    "fails with DependencyInstallFailed and npm's error lines for %s",
    async (_case, name, version, code) => {
      const packageJson = JSON.stringify({ name: 'my-lambda', dependencies: { [name]: version } }, null, 2);
      const error = await compileError({ 'package.json': packageJson, 'index.ts': greetingHandler });
      expect(error.reason).toBe('DependencyInstallFailed');
      expect(error.message).toMatch(new RegExp(`^package\\.json:4:5: npm error code ${code}$`, 'm'));
      expect(error.message).toContain(`${name}@${version}`);
      expect(error.message).not.toContain(tempDir); // no npm cache or debug log paths
    },
    npmTimeout,
  );

  it.each(['../outside.ts', 'lib/../../outside.ts', '/tmp/outside.ts'])('refuses the path %s, which escapes the source directory', async (name) => {
    const error = await compileError({ 'index.ts': greetingHandler, [name]: 'export {};\n' });
    expect(error.reason).toBe('CompileFailed');
    expect(error.message).toBe(`${name}:1:1: the path is not inside the source directory: use a relative path without ".."`);
    expect(await readdir(tempDir, { recursive: true })).not.toContainEqual(expect.stringContaining('outside.ts'));
  });

  it("refuses imports of files outside the source directory, such as the builder's own", async () => {
    await writeFile(path.join(tempDir, 'secret.json'), '{"token": "s3cr3t"}');
    const error = await compileError({ 'index.ts': 'import secret from "../../secret.json";\nexport default () => new Response(secret.token);\n' });
    expect(error.message).toBe('index.ts:1:20: "../../secret.json" is outside the lambda\'s source: only its own files and its npm dependencies can be imported');
  });

  const multiModuleSource = {
    'index.ts': `import { greet } from './lib/greet.ts';
import legacy from './lib/legacy.cjs';
import config from './config.json';
export default async () => new Response(\`\${greet(config.name)} \${legacy.where()}\`);
`,
    'lib/greet.ts': 'export const greet = (name: string) => `hi ${name}`;\n',
    'lib/legacy.cjs': "module.exports = { where: () => 'from cjs' };\n",
    'config.json': '{"name": "cfg"}\n',
  };

  it('gives byte-identical assets for identical input', async () => {
    const first = await bundleFiles(multiModuleSource);
    const second = await bundleFiles(multiModuleSource);
    expect(Buffer.from(second.asset).equals(Buffer.from(first.asset))).toBe(true);
  });

  it('keeps the work directory out of the asset, naming modules by their path in the source', async () => {
    const bundle = await bundleFiles(multiModuleSource);
    const text = Buffer.from(bundle.asset).toString();
    expect(text).not.toContain(tempDir);
    expect(text).not.toContain(await realpath(tempDir));
    expect(text).toContain('// lib/legacy.cjs');
    expect(await respond(bundle.asset, 'http://x/')).toBe('hi cfg from cjs');
  });
});
