import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { sha256Digest } from './digest.ts';
import { createImageLayer, layerTarEntries, readImageLayer } from './image-layer.ts';

const files = {
  '/app/hello.mjs': { bytes: Buffer.from('console.log("hello")\n'), mode: 0o644 },
  '/usr/local/bin/tool': { bytes: Buffer.from('#!/bin/sh\necho tool\n'), mode: 0o755 },
  '/app/a-first.txt': { bytes: Buffer.alloc(0), mode: 0o600 },
};

describe('createImageLayer', () => {
  it('gives the same bytes for the same files in any order', () => {
    const reversed = new Map(Object.entries(files).reverse());
    const a = createImageLayer(files);
    const b = createImageLayer(reversed);
    expect(b.compressed.equals(a.compressed)).toBe(true);
    expect(b.compressedDigest).toBe(a.compressedDigest);
    expect(a.compressedDigest).toBe(sha256Digest(a.compressed));
    expect(a.diffId).toBe(sha256Digest(gunzipSync(a.compressed)));
    expect(a.size).toBe(a.compressed.length);
  });

  it('changes the digest when a mode or a byte changes', () => {
    const base = createImageLayer(files).compressedDigest;
    expect(createImageLayer({ ...files, '/app/hello.mjs': { bytes: Buffer.from('console.log("hellO")\n'), mode: 0o644 } }).compressedDigest).not.toBe(base);
    expect(createImageLayer({ ...files, '/app/hello.mjs': { bytes: files['/app/hello.mjs'].bytes, mode: 0o755 } }).compressedDigest).not.toBe(base);
  });

  it('writes a gzip header with no time and no file name', () => {
    const { compressed } = createImageLayer(files);
    expect([...compressed.subarray(0, 3)]).toEqual([0x1f, 0x8b, 8]);
    expect(compressed[3]).toBe(0); // FLG: no FNAME, FCOMMENT, FEXTRA
    expect(compressed.readUInt32LE(4)).toBe(0); // MTIME
  });

  it('sorts entries, adds parent directories, and fixes owner and time', () => {
    const entries = readImageLayer(createImageLayer(files).compressed);
    expect(entries.map((entry) => [entry.path, entry.typeFlag, entry.mode.toString(8)])).toEqual([
      ['app', '5', '755'],
      ['app/a-first.txt', '0', '600'],
      ['app/hello.mjs', '0', '644'],
      ['usr', '5', '755'],
      ['usr/local', '5', '755'],
      ['usr/local/bin', '5', '755'],
      ['usr/local/bin/tool', '0', '755'],
    ]);
    expect(entries.every((entry) => entry.uid === 0 && entry.gid === 0 && entry.mtime === 0)).toBe(true);
    expect(entries[2]!.bytes.toString()).toBe('console.log("hello")\n');
  });

  it('is read by GNU tar, long names included', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'oci-layer-'));
    try {
      const longPath = `/${'d'.repeat(90)}/${'e'.repeat(40)}/${'f'.repeat(90)}.txt`;
      const layer = createImageLayer({ ...files, [longPath]: { bytes: Buffer.from('long'), mode: 0o644 } });
      await writeFile(path.join(dir, 'layer.tar.gz'), layer.compressed);
      const listing = execFileSync('tar', ['-tvzf', path.join(dir, 'layer.tar.gz'), '--numeric-owner'], { encoding: 'utf8' });
      expect(listing).toContain('-rwxr-xr-x 0/0');
      expect(listing).toContain('1970-01-01');
      execFileSync('tar', ['-xzf', path.join(dir, 'layer.tar.gz'), '-C', dir]);
      expect(await readFile(path.join(dir, longPath), 'utf8')).toBe('long');
      expect((await stat(path.join(dir, 'usr/local/bin/tool'))).mode & 0o777).toBe(0o755);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes directories given a mode, sticky bit included, empty or with files below', async () => {
    const layer = createImageLayer(files, { directories: { '/tmp': 0o1777, '/app': 0o750, '/var/empty/dir': 0o700 } });
    const entries = readImageLayer(layer.compressed).filter((entry) => entry.typeFlag === '5');
    expect(entries.map((entry) => [entry.path, entry.mode.toString(8)])).toEqual([
      ['app', '750'],
      ['tmp', '1777'],
      ['usr', '755'],
      ['usr/local', '755'],
      ['usr/local/bin', '755'],
      ['var', '755'],
      ['var/empty', '755'],
      ['var/empty/dir', '700'],
    ]);
    expect(layer.uncompressedSize).toBe(gunzipSync(layer.compressed).length);
    expect(createImageLayer(files, { directories: { '/tmp': 0o1777 } }).compressedDigest).not.toBe(createImageLayer(files).compressedDigest);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'oci-layer-'));
    try {
      await writeFile(path.join(dir, 'layer.tar.gz'), layer.compressed);
      expect(execFileSync('tar', ['-tvzf', path.join(dir, 'layer.tar.gz'), '--numeric-owner'], { encoding: 'utf8' })).toMatch(/^drwxrwxrwt 0\/0 .* tmp\/$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a directory given a mode that a file also claims, or an invalid mode', () => {
    const file = { bytes: Buffer.from('x'), mode: 0o644 };
    expect(() => layerTarEntries({ '/tmp': file }, { '/tmp': 0o1777 })).toThrow(/both a file and a directory/);
    expect(() => layerTarEntries({}, { '/tmp': 0o17777 })).toThrow(/invalid mode/);
    expect(() => layerTarEntries({}, { 'tmp': 0o1777 })).toThrow(/not an absolute path/);
  });

  it('refuses relative, unnormalized and conflicting paths', () => {
    const file = { bytes: Buffer.from('x'), mode: 0o644 };
    expect(() => layerTarEntries({ 'app/x': file })).toThrow(/not an absolute path/);
    expect(() => layerTarEntries({ '/app/../etc/passwd': file })).toThrow(/not a normalized/);
    expect(() => layerTarEntries({ '/app/': file })).toThrow(/not a normalized/);
    expect(() => layerTarEntries({ '/app': file, '/app/x': file })).toThrow(/both a file and a directory/);
    expect(() => layerTarEntries({ [`/${'x'.repeat(300)}`]: file })).not.toThrow();
    expect(() => createImageLayer({ [`/${'x'.repeat(300)}`]: file })).toThrow(/too long for ustar/);
  });
});
