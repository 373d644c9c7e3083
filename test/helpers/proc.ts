/**
 * A process's figures from Linux's /proc, for the benchmarks that measure what a server process
 * costs. /proc/PID/stat's fields after the command name (which may hold spaces and parentheses):
 * [0] state, [1] ppid, … [11] utime, [12] stime, [13] cutime, [14] cstime, in clock ticks.
 */
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
export const USER_HZ = 100

/** /proc/PID/stat's fields after the command name. */
export function procStat(pid: number | string): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/** User + system CPU seconds of a process, all its threads. */
export function cpuSeconds(pid: number | string): number {
  const f = procStat(pid)
  return (Number(f[11]) + Number(f[12])) / USER_HZ
}
