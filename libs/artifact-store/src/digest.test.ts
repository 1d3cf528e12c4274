import { describe, expect, it } from '@jest/globals';
import { digestOf } from './index.ts';

describe('digestOf', () => {
  it('is "sha256:" and the lowercase hex sha256 of the bytes', () => {
    expect(digestOf(new Uint8Array())).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestOf(new TextEncoder().encode('abc'))).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes only the bytes a view covers', () => {
    const view = new TextEncoder().encode('xabcx').subarray(1, 4);
    expect(digestOf(view)).toBe(digestOf(new TextEncoder().encode('abc')));
  });
});
