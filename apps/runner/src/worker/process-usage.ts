// What a worker process uses, read from /proc by the runner (the worker cannot lie about it):
// its allocated memory as the kernel counts it for RLIMIT_DATA (VmData: the V8 heap, Buffers,
// typed arrays, WebAssembly memory and native allocations alike), its resident size, and its CPU
// time. The files stay open and are re-read from offset 0, so a sample costs two reads.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

export interface MemoryUsage {
  /** Private writable memory (VmData), what RLIMIT_DATA limits. */
  dataKiB: number;
  residentKiB: number;
  /** The highest resident size the process reached (VmHWM). */
  peakResidentKiB: number;
}

/** Clock ticks per second of /proc/<pid>/stat's times: USER_HZ, fixed at 100 on Linux. */
const TICKS_PER_SECOND = 100;

/** Memory figures from the text of /proc/<pid>/status; undefined when one is missing. */
export function parseMemoryStatus(status: string): MemoryUsage | undefined {
  const kib = (field: string) => {
    const at = status.indexOf(`\n${field}:`);
    if (at < 0) return undefined;
    return Number.parseInt(status.slice(at + field.length + 2).trimStart(), 10);
  };
  const dataKiB = kib('VmData');
  const residentKiB = kib('VmRSS');
  const peakResidentKiB = kib('VmHWM');
  if (dataKiB === undefined || residentKiB === undefined || peakResidentKiB === undefined) return undefined;
  return { dataKiB, residentKiB, peakResidentKiB };
}

/**
 * User plus system CPU time in milliseconds, all threads, from the text of /proc/<pid>/stat.
 * The command name (field 2) may hold spaces and parentheses, so fields count from the last ")".
 */
export function parseCpuMillis(stat: string): number | undefined {
  return parseCpuTimes(stat)?.ownMillis;
}

/**
 * The process's own CPU time and that of its children it has waited for (fields 14-17 of
 * proc(5): utime, stime, cutime, cstime), in milliseconds.
 */
export function parseCpuTimes(stat: string): { ownMillis: number; reapedChildrenMillis: number } | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Index 0 here is field 3.
  const [user, system, childrenUser, childrenSystem] = fields.slice(11, 15).map(Number);
  if (!Number.isFinite(user) || !Number.isFinite(system)) return undefined;
  const children = Number.isFinite(childrenUser) && Number.isFinite(childrenSystem) ? childrenUser! + childrenSystem! : 0;
  return { ownMillis: ((user! + system!) * 1000) / TICKS_PER_SECOND, reapedChildrenMillis: (children * 1000) / TICKS_PER_SECOND };
}

/** Every worker process's usage while it lives, for the runner's CPU total. */
const liveProcesses = new Set<ProcessUsage>();

/**
 * CPU seconds used by the runner and all its workers since it started: its own time, that of
 * workers that have exited (the kernel adds a reaped child's time to its parent's cutime and
 * cstime; a worker's usage is closed only after Node has reaped it, so none is counted twice)
 * and that of the workers alive now.
 */
export function runnerCpuSeconds(): number {
  const own = parseCpuTimes(readFileSync('/proc/self/stat', 'latin1'));
  let millis = own ? own.ownMillis + own.reapedChildrenMillis : 0;
  for (const usage of liveProcesses) millis += usage.cpuMillis() ?? 0;
  return millis / 1000;
}

export class ProcessUsage {
  readonly #statusFd: number;
  readonly #statFd: number;
  readonly #buffer = Buffer.allocUnsafe(4096);
  #closed = false;

  /** Throws when the process does not exist. */
  constructor(pid: number) {
    this.#statusFd = openSync(`/proc/${pid}/status`, 'r');
    try {
      this.#statFd = openSync(`/proc/${pid}/stat`, 'r');
    } catch (error) {
      closeSync(this.#statusFd);
      throw error;
    }
    liveProcesses.add(this);
  }

  /** Undefined once the process is gone. */
  memory(): MemoryUsage | undefined {
    const text = this.#read(this.#statusFd);
    return text === undefined ? undefined : parseMemoryStatus(text);
  }

  /** Undefined once the process is gone. */
  cpuMillis(): number | undefined {
    const text = this.#read(this.#statFd);
    return text === undefined ? undefined : parseCpuMillis(text);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    liveProcesses.delete(this);
    closeSync(this.#statusFd);
    closeSync(this.#statFd);
  }

  #read(fd: number): string | undefined {
    if (this.#closed) return undefined;
    try {
      const bytes = readSync(fd, this.#buffer, 0, this.#buffer.length, 0);
      return this.#buffer.toString('latin1', 0, bytes);
    } catch {
      // ESRCH: the process has exited (its files stay open but read nothing).
      return undefined;
    }
  }
}
