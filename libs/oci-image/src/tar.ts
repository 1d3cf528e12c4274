// The ustar subset an image layer needs: regular files and directories, fixed owner and time.
// Written here rather than taken from a package: the format is small and fixed, and owning
// every byte is what makes a layer reproducible.

const BLOCK = 512;
const NAME_LENGTH = 100;
const PREFIX_LENGTH = 155;

export type TarEntryType = 'file' | 'directory';

export interface TarEntry {
  /** Relative, without a leading or trailing slash: `usr/local/bin/node`. */
  path: string;
  type: TarEntryType;
  /** Permission bits only (0o755). */
  mode: number;
  /** Files only. */
  bytes?: Uint8Array;
}

/**
 * A ustar archive of the entries in the order given, every entry owned by 0:0 with mtime 0,
 * ending with the two zero blocks. No padding to a 10 KiB record: readers do not need it.
 */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const bytes = entry.type === 'file' ? (entry.bytes ?? new Uint8Array()) : new Uint8Array();
    parts.push(tarHeader(entry, bytes.length));
    if (bytes.length > 0) {
      parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      const padding = (BLOCK - (bytes.length % BLOCK)) % BLOCK;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  const [prefix, name] = splitTarName(entry.type === 'directory' ? `${entry.path}/` : entry.path);
  header.write(name, 0, NAME_LENGTH, 'utf8');
  writeOctal(header, 100, 8, entry.mode & 0o7777);
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, 0); // mtime
  header.fill(' ', 148, 156); // the checksum counts its own field as spaces
  header.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  writeOctal(header, 329, 8, 0); // devmajor
  writeOctal(header, 337, 8, 0); // devminor
  header.write(prefix, 345, PREFIX_LENGTH, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

/** ustar keeps long names as prefix + "/" + name, split at a slash. */
function splitTarName(path: string): [prefix: string, name: string] {
  if (Buffer.byteLength(path) <= NAME_LENGTH) return ['', path];
  // A directory's trailing slash belongs to the name part.
  for (let slash = path.indexOf('/'); slash > 0 && slash < path.length - 1; slash = path.indexOf('/', slash + 1)) {
    const prefix = path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (Buffer.byteLength(prefix) <= PREFIX_LENGTH && Buffer.byteLength(name) <= NAME_LENGTH) return [prefix, name];
  }
  throw new Error(`tar: the path ${JSON.stringify(path)} is too long for ustar (at most ${PREFIX_LENGTH} + 1 + ${NAME_LENGTH} bytes, split at a slash)`);
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new Error(`tar: ${value} does not fit in a ${length}-byte ustar field`);
  header.write(`${digits.padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

export interface TarReadEntry {
  path: string;
  /** The ustar type flag: '0' (or NUL) file, '5' directory, '2' symlink, ... */
  typeFlag: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  bytes: Buffer;
}

/** Reads a ustar archive (no GNU or PAX extensions: entries using them are returned with their raw type flag). */
export function readTar(archive: Buffer): TarReadEntry[] {
  const entries: TarReadEntry[] = [];
  let offset = 0;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const stored = readOctal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== stored) throw new Error(`tar: bad header checksum at byte ${offset}`);
    const name = readString(header, 0, NAME_LENGTH);
    const prefix = header.subarray(257, 262).toString('ascii') === 'ustar' ? readString(header, 345, PREFIX_LENGTH) : '';
    const size = readOctal(header, 124, 12);
    const typeFlag = String.fromCharCode(header[156]!) === '\0' ? '0' : String.fromCharCode(header[156]!);
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) throw new Error(`tar: entry ${JSON.stringify(name)} runs past the end of the archive`);
    entries.push({
      path: (prefix ? `${prefix}/${name}` : name).replace(/\/$/, ''),
      typeFlag,
      mode: readOctal(header, 100, 8),
      uid: readOctal(header, 108, 8),
      gid: readOctal(header, 116, 8),
      mtime: readOctal(header, 136, 12),
      bytes: archive.subarray(dataStart, dataStart + size),
    });
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

function readString(header: Buffer, offset: number, length: number): string {
  const field = header.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function readOctal(header: Buffer, offset: number, length: number): number {
  const text = readString(header, offset, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}
