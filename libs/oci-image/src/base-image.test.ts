import { describe, expect, it } from '@jest/globals';
import { parseLddOutput } from './base-image.ts';

describe('parseLddOutput', () => {
  it('lists the libraries and the loader, not the vDSO', () => {
    const output = `\tlinux-vdso.so.1 (0x00007ffd2b3f2000)
\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f6652235000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6651c1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f6652257000)
`;
    expect(parseLddOutput(output)).toEqual(['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libdl.so.2', '/lib64/ld-linux-x86-64.so.2']);
  });
  it('is empty for a static binary', () => expect(parseLddOutput('\tstatically linked\n')).toEqual([]));
  it('refuses a missing library and lines it cannot read', () => {
    expect(() => parseLddOutput('\tlibfoo.so.1 => not found\n', '/bin/x')).toThrow('ldd: /bin/x needs libfoo.so.1, which is not installed');
    expect(() => parseLddOutput('something odd\n')).toThrow(/cannot read the line/);
  });
});
