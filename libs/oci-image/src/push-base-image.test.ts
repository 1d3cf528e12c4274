import { describe, expect, it } from '@jest/globals';
import { runPushBaseImage } from './push-base-image.ts';

function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  return runPushBaseImage(argv, { stdout: (text) => out.push(text), stderr: (text) => err.push(text) }).then((code) => ({ code, stdout: out.join(''), stderr: err.join('') }));
}

describe('push-base-image', () => {
  it('prints usage with an example on --help, to stdout, exit 0', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('example:');
  });

  it('exits 2 with usage on stderr for missing or unknown options', async () => {
    expect(await run(['--registry', 'http://127.0.0.1:5000'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('missing --repo, --tag') });
    expect(await run(['--colour'])).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--colour'") });
  });

  it('exits 1 for plain http off loopback without --insecure', async () => {
    const { code, stderr } = await run(['--registry', 'http://registry.example:5000', '--repo', 'a', '--tag', 'b']);
    expect(code).toBe(1);
    expect(stderr).toContain('plain http needs insecure: true');
  });
});
