import { readdir, readFile, readlink } from 'node:fs/promises';

const LISTEN = '0A';

/**
 * Where a process listens for TCP connections, as "address:port" (Linux: its socket inodes
 * matched against /proc/net/tcp and tcp6; IPv6 addresses are shown as "[ipv6]").
 */
export async function listeningAddresses(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'utf8').catch(() => '')).trim().split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      const [local, state, inode] = [fields[1]!, fields[3], fields[9]];
      if (state !== LISTEN || !inode || !inodes.has(inode)) continue;
      const [hexAddress, hexPort] = local.split(':') as [string, string];
      // IPv4 addresses are written as one little-endian word.
      const address = hexAddress.length === 8 ? (hexAddress.match(/../g) ?? []).reverse().map((byte) => parseInt(byte, 16)).join('.') : '[ipv6]';
      found.push(`${address}:${parseInt(hexPort, 16)}`);
    }
  }
  return found.sort();
}
