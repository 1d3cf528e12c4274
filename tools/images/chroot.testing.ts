// Running an unpacked image without a container runtime, for the image tests: chroot into its
// layers with what a runtime would provide (/proc and /dev/null), and stop what ran there.
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A program of this machine (chroot, mount and mknod are in sbin, which an image's PATH lacks). */
export async function hostCommand(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/sbin', '/usr/bin', '/bin')) {
    const candidate = path.join(dir, name);
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  throw new Error(`${name} is not installed`);
}

/** The mounts made in image root directories, to undo before they are removed. */
export class RuntimeMounts {
  readonly #mounted: string[] = [];

  /** What a container runtime provides: /proc (the runner reads its workers' there) and /dev/null. */
  async provide(rootfs: string): Promise<void> {
    await mkdir(path.join(rootfs, 'proc'));
    await execFileAsync(await hostCommand('mount'), ['-t', 'proc', 'proc', path.join(rootfs, 'proc')]);
    this.#mounted.push(path.join(rootfs, 'proc'));
    await mkdir(path.join(rootfs, 'dev'));
    await execFileAsync(await hostCommand('mknod'), ['-m', '666', path.join(rootfs, 'dev/null'), 'c', '1', '3']);
  }

  /** Never remove a root directory while /proc is mounted in it. */
  async undo(): Promise<void> {
    for (const proc of this.#mounted.splice(0)) await execFileAsync(await hostCommand('umount'), [proc]);
  }
}

/** SIGTERM to a chroot'd runner, SIGKILL to its process group past a grace, and to workers left behind. */
export async function stopRunner(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(kill);
  }
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // The group is gone.
  }
}
