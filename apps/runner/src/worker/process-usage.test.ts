import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { ProcessUsage, parseCpuMillis, parseCpuTimes, parseMemoryStatus, runnerCpuSeconds } from './process-usage.ts';

describe('process usage', () => {
  it('reads VmData, VmRSS and VmHWM from /proc/<pid>/status text', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1285752 kB\nVmHWM:\t   42104 kB\nVmRSS:\t   42000 kB\nVmData:\t  572944 kB\nVmStk:\t     132 kB\n';
    expect(parseMemoryStatus(status)).toEqual({ dataKiB: 572944, residentKiB: 42000, peakResidentKiB: 42104 });
    expect(parseMemoryStatus('Name:\tnode\nVmRSS:\t 1 kB\n')).toBeUndefined();
  });

  it('adds user and system time from /proc/<pid>/stat, whatever the command name holds', () => {
    // Fields 14 and 15 are utime and stime, in ticks of 10 ms.
    const rest = 'S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 200 300';
    expect(parseCpuMillis(`123 (node) ${rest}`)).toBe(3000);
    expect(parseCpuMillis(`123 (a) b (c) ${rest}`)).toBe(3000);
    expect(parseCpuMillis('123 (node)')).toBeUndefined();
  });

  it('reads the time of reaped children (cutime, cstime) beside the own time', () => {
    const rest = 'S 1 2 3 4 5 6 7 8 9 10 250 50 70 30 20 0 1 0 100 200 300';
    expect(parseCpuTimes(`123 (node) ${rest}`)).toEqual({ ownMillis: 3000, reapedChildrenMillis: 1000 });
  });

  it('counts this process and the live processes it samples in the runner total', () => {
    const selfSeconds = parseCpuMillis(readFileSync('/proc/self/stat', 'latin1'))! / 1000;
    const before = runnerCpuSeconds();
    const usage = new ProcessUsage(process.pid);
    let sampled: number;
    try {
      // This process is counted twice now: once as the runner, once as a sampled live process.
      sampled = runnerCpuSeconds();
      expect(sampled).toBeGreaterThanOrEqual(before + selfSeconds - 0.05);
    } finally {
      usage.close();
    }
    // Closed, it is counted once again (the little CPU used meanwhile aside).
    expect(runnerCpuSeconds()).toBeLessThan(sampled - selfSeconds + 0.5);
  });

  it('samples a live process and reads nothing once closed', () => {
    const usage = new ProcessUsage(process.pid);
    const memory = usage.memory()!;
    expect(memory.dataKiB).toBeGreaterThan(0);
    expect(memory.residentKiB).toBeGreaterThan(0);
    const before = parseCpuMillis(readFileSync(`/proc/${process.pid}/stat`, 'latin1'))!;
    expect(usage.cpuMillis()).toBeGreaterThanOrEqual(before);
    usage.close();
    expect(usage.memory()).toBeUndefined();
    expect(() => new ProcessUsage(2 ** 22 + 1)).toThrow();
  });
});
