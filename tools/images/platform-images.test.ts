import { describe, expect, it } from '@jest/globals';
import { readImageLayer, type ImageConfigJson, type ImageManifestJson, type LayerFile } from '@kublambda/oci-image';
import { assembleImages, parseRegistryPrefix, runPlatformImages, SERVICE_IMAGES, SERVICES, type ImageInputs } from './platform-images.ts';

const file = (text: string, mode = 0o644): LayerFile => ({ bytes: Buffer.from(text), mode });

/** Stand-ins for node, the bundles and runner-base's files: assembly is a pure function of them. */
function inputs(): ImageInputs {
  const appFiles = new Map(
    SERVICES.filter((service) => service !== 'runner-base').map((service) => [service as Exclude<typeof service, 'runner-base'>, new Map([[`/app/${service}/main.mjs`, file(`console.log('${service}')`)]])]),
  );
  return {
    runtime: new Map([['/usr/local/bin/node', file('node', 0o755)], ['/lib/x86_64-linux-gnu/libc.so.6', file('libc', 0o755)]]),
    appFiles,
    runnerBase: new Map([['/usr/local/bin/node', file('node', 0o755)], ['/app/runner/main.mjs', file('runner')]]),
  };
}
const labels = { source: 'https://example.com/kublambda.git', version: '0.1.0', revision: 'c0ffee' };

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPlatformImages(argv, { stdout: (text) => out.push(text), stderr: (text) => err.push(text) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('assembleImages', () => {
  it('gives the same digests when assembled twice from the same files and commit', () => {
    const first = assembleImages(inputs(), labels).map(({ service, image }) => [service, image.manifestDigest]);
    const second = assembleImages(inputs(), labels).map(({ service, image }) => [service, image.manifestDigest]);
    expect(second).toEqual(first);
    expect(first.map(([service]) => service)).toEqual([...SERVICES]);
    expect(new Set(first.map(([, digest]) => digest)).size).toBe(SERVICES.length);
    expect(assembleImages(inputs(), { ...labels, revision: 'decaf' })[0]!.image.manifestDigest).not.toBe(first[0]![1]);
  });

  it('labels every image and runs the platform images as 65532 from their bundle, runner-base as root in standalone mode', () => {
    for (const { service, image } of assembleImages(inputs(), labels)) {
      const config = JSON.parse(image.config.toString()) as ImageConfigJson;
      expect(config.config?.Labels).toEqual({
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.revision': 'c0ffee',
        'org.opencontainers.image.source': 'https://example.com/kublambda.git',
        'org.opencontainers.image.title': `kublambda-${service}`,
        'org.opencontainers.image.version': '0.1.0',
      });
      expect(config.config?.Entrypoint).toEqual(SERVICE_IMAGES[service].entrypoint);
      expect(config.created).toBe('1970-01-01T00:00:00Z');
      const env = config.config?.Env ?? [];
      if (service === 'runner-base') {
        expect(config.config?.User).toBeUndefined();
        expect(env).toContain('KUBLAMBDA_STANDALONE_LAMBDA=/lambda/lambda.json');
      } else {
        expect(config.config?.User).toBe('65532:65532');
        expect(config.config?.Entrypoint).toEqual(['/usr/local/bin/node', `/app/${service}/main.mjs`]);
        expect(env.some((entry) => entry.startsWith('KUBLAMBDA_STANDALONE_LAMBDA='))).toBe(false);
      }
    }
  });

  it('shares the node layer among the platform images, /tmp in it sticky and open to all', () => {
    const images = assembleImages(inputs(), labels).filter(({ service }) => service !== 'runner-base');
    const firstLayers = new Set(images.map(({ image }) => (JSON.parse(image.manifest.toString()) as ImageManifestJson).layers[0]!.digest));
    expect(firstLayers.size).toBe(1);
    for (const { layers } of assembleImages(inputs(), labels)) {
      const tmp = readImageLayer(layers[0]!.compressed).find((entry) => entry.path === 'tmp');
      expect([tmp?.typeFlag, tmp?.mode.toString(8)]).toEqual(['5', '1777']);
    }
  });
});

describe('parseRegistryPrefix', () => {
  it.each([
    ['127.0.0.1:5000/kublambda', { url: 'http://127.0.0.1:5000', host: '127.0.0.1:5000', prefix: 'kublambda', loopback: true }],
    ['http://127.0.0.1:5000/kublambda/', { url: 'http://127.0.0.1:5000', host: '127.0.0.1:5000', prefix: 'kublambda', loopback: true }],
    ['localhost:5000', { url: 'http://localhost:5000', host: 'localhost:5000', prefix: '', loopback: true }],
    ['registry.example/team/kublambda', { url: 'https://registry.example', host: 'registry.example', prefix: 'team/kublambda', loopback: false }],
    ['http://registry.example:5000/k', { url: 'http://registry.example:5000', host: 'registry.example:5000', prefix: 'k', loopback: false }],
  ])('%s', (text, expected) => {
    expect(parseRegistryPrefix(text)).toEqual(expected);
  });

  it('refuses other schemes, credentials and repository paths a registry refuses', () => {
    expect(() => parseRegistryPrefix('ftp://127.0.0.1/k')).toThrow(/http or https/);
    expect(() => parseRegistryPrefix('https://u:p@registry.example/k')).toThrow(/nothing else/);
    expect(() => parseRegistryPrefix('registry.example/Kublambda')).toThrow(/not a repository path/);
  });
});

describe('npm run images', () => {
  it('prints its usage with examples for --help, exit 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('npm run images -- --registry 127.0.0.1:5000/kublambda');
  });

  it('exits 2 on a missing or unknown option or an unknown service, with the usage on stderr', async () => {
    expect(await run([])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('missing --registry') });
    expect(await run(['--registry', '127.0.0.1:5000/k', '--repo', 'x'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--repo'") });
    expect(await run(['--registry', '127.0.0.1:5000/k', '--service', 'nope'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--service nope: not one of') });
  });
});
