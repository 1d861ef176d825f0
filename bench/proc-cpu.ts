/**
 * CPU time of processes from /proc, for benchmarks that must say where a run's CPU went (the API,
 * its Postgres, the object store, a reference tool) on a 2-core machine where they all compete.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
export const CLOCK_TICKS = 100;

/** /proc/PID/stat's fields after the command name (state first), or null once the process is gone. */
export function statFields(pid: number | 'self'): string[] | null {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Every process below `root` (its children and theirs), read from /proc. */
export function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ppid = statFields(Number(d))?.[1];
    if (ppid === undefined) continue;
    const list = kids.get(Number(ppid)) ?? [];
    list.push(Number(d));
    kids.set(Number(ppid), list);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      walk(k);
    }
  };
  walk(root);
  return out;
}

/** User + system CPU ticks the processes have used so far. */
export const ticks = (pids: number[]) =>
  pids.reduce((n, p) => {
    const f = statFields(p);
    return f ? n + Number(f[11]) + Number(f[12]) : n;
  }, 0);

/**
 * Unit: seconds. CPU of this process's children that have exited and been waited for (cutime +
 * cstime): the difference around a command run to completion is that command's CPU.
 */
export function exitedChildrenCpu(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) / CLOCK_TICKS : 0;
}

/** Unit: seconds. CPU of each of this process's threads so far, summed by thread name (comm). */
export function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / CLOCK_TICKS);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}
