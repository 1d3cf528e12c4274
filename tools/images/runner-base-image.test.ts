import { describe, expect, it } from '@jest/globals';
import { createRunnerBaseImage, RUNNER_BASE_ENV, RUNNER_ENTRYPOINT, runRunnerBaseImage } from './runner-base-image.ts';

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRunnerBaseImage(argv, { stdout: (text) => out.push(text), stderr: (text) => err.push(text) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('runner-base-image', () => {
  it('prints its usage with examples for --help, exit 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--repo kublambda/runner-base --tag dev');
  });

  it('exits 2 on a missing or unknown option, with the usage on stderr', async () => {
    expect(await run(['--registry', 'http://127.0.0.1:5000'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('missing --repo, --tag') });
    expect(await run(['--registry', 'http://127.0.0.1:5000', '--repo', 'r', '--tag', 't', '--app-dir', 'x'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--app-dir'") });
  });

  it('exits 1 on plain http off loopback without --insecure', async () => {
    const { code, stderr } = await run(['--registry', 'http://registry.example:5000', '--repo', 'r', '--tag', 't']);
    expect(code).toBe(1);
    expect(stderr).toContain('plain http needs insecure: true');
  });

  it('makes an image whose entrypoint is the runner, standalone on /lambda/lambda.json', () => {
    const { image } = createRunnerBaseImage(new Map([['/app/runner/main.mjs', { bytes: Buffer.from(''), mode: 0o644 }]]));
    const config = JSON.parse(image.config.toString()) as { config: unknown };
    expect(RUNNER_ENTRYPOINT).toEqual(['/usr/local/bin/node', '/app/runner/main.mjs']);
    expect(RUNNER_BASE_ENV).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', KUBLAMBDA_STANDALONE_LAMBDA: '/lambda/lambda.json' });
    expect(config.config).toEqual({ Env: ['KUBLAMBDA_STANDALONE_LAMBDA=/lambda/lambda.json', 'PATH=/usr/local/bin:/usr/bin:/bin'], Entrypoint: ['/usr/local/bin/node', '/app/runner/main.mjs'] });
  });
});
