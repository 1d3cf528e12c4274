// An npm registry on loopback for tests and the local platform: the package tarballs kept in
// libs/dev-servers/npm-packages (made with `npm pack <name>@<version>`), each package's document
// (packument) computed from its tarballs' package.json. Builds then install lambdas' npm
// dependencies without a request leaving the machine; a package or version that is not there
// gets npm's own E404 or ETARGET, as from the public registry.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

export const NPM_PACKAGES_DIR = path.resolve(import.meta.dirname, '../npm-packages');

export interface NpmRegistry {
  /** http://127.0.0.1:<port>/, for NPM_REGISTRY. */
  url: string;
  /** name -> versions served. */
  packages: Record<string, string[]>;
  stop(): Promise<void>;
}

interface PackageVersion {
  manifest: Record<string, unknown> & { name: string; version: string };
  tarball: Buffer;
  file: string;
}

/** package/package.json from a .tgz (a gzipped ustar archive), without unpacking anything else. */
export function packageJsonOfTarball(tgz: Buffer): Record<string, unknown> & { name: string; version: string } {
  const tar = gunzipSync(tgz);
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const body = offset + 512;
    // npm pack puts everything under package/ (some older tarballs use another top directory).
    if (/^[^/]+\/package\.json$/.test(name)) return JSON.parse(tar.subarray(body, body + size).toString('utf8'));
    offset = body + Math.ceil(size / 512) * 512;
  }
  throw new Error('the tarball holds no package.json at its top directory');
}

export async function startNpmRegistry(options: { packagesDir?: string } = {}): Promise<NpmRegistry> {
  const dir = options.packagesDir ?? NPM_PACKAGES_DIR;
  const byName = new Map<string, PackageVersion[]>();
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.tgz')).sort()) {
    const tarball = await readFile(path.join(dir, file));
    const manifest = packageJsonOfTarball(tarball);
    byName.set(manifest.name, [...(byName.get(manifest.name) ?? []), { manifest, tarball, file }]);
  }
  let base = '';
  const packument = (name: string, versions: PackageVersion[]) => {
    const entries = versions.map(({ manifest, tarball, file }) => [
      manifest.version,
      {
        ...manifest,
        _id: `${name}@${manifest.version}`,
        dist: {
          tarball: `${base}${encodeURIComponent(name).replace('%40', '@')}/-/${file}`,
          integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
          shasum: createHash('sha1').update(tarball).digest('hex'),
        },
      },
    ]);
    // The last by file name stands for the newest: the directory holds one or two per package.
    return { _id: name, name, 'dist-tags': { latest: versions.at(-1)!.manifest.version }, versions: Object.fromEntries(entries) };
  };
  const server = createServer((request, response) => {
    const url = decodeURIComponent(new URL(request.url ?? '/', 'http://registry').pathname).replace(/^\//, '');
    const tarballMatch = /^(.+)\/-\/([^/]+\.tgz)$/.exec(url);
    const name = tarballMatch ? tarballMatch[1]! : url;
    const versions = byName.get(name);
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'application/json', JSON.stringify({ error: 'this registry is read-only' }));
    if (!versions) return send(404, 'application/json', JSON.stringify({ error: 'Not found' }));
    if (!tarballMatch) return send(200, 'application/json', JSON.stringify(packument(name, versions)));
    const version = versions.find((candidate) => candidate.file === tarballMatch[2]);
    return version ? send(200, 'application/octet-stream', version.tarball) : send(404, 'application/json', JSON.stringify({ error: 'Not found' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url: base,
    packages: Object.fromEntries([...byName].map(([name, versions]) => [name, versions.map((v) => v.manifest.version)])),
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}
