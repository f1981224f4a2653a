import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** What a child process has used so far, read from /proc (Linux). */
export interface ProcessUsage {
  /** User + system CPU time of the process (all its threads). */
  cpuSeconds: number;
  /** Peak resident set size (VmHWM). */
  peakRssBytes: number;
  /** Resident set size now (VmRSS). */
  rssBytes: number;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    const value = Number(text);
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** undefined once the process is gone. */
export function readProcessUsage(pid: number): ProcessUsage | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first, so utime (14) and stime (15) are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kiB = (field: string): number =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { cpuSeconds: ticks / ticksPerSecond(), peakRssBytes: kiB('VmHWM'), rssBytes: kiB('VmRSS') };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds every process of the machine has used so far (user, nice, system, irq, softirq,
 * steal from /proc/stat): with everything on one machine, what the whole pipeline costs, not
 * only the process that measures.
 */
export function machineBusySeconds(): number {
  const fields =
    readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / ticksPerSecond();
}
