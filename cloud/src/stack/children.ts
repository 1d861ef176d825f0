/**
 * The stack's child processes (Postgres, cognito-local), recorded so that a run that was killed
 * outright (`kill -9`, a closed terminal) does not leave them holding the ports and Postgres's
 * lock for the next run. Each child is written to `<stack dir>/children.json` as it starts; the
 * next start stops whichever of them are still running — checked by process id AND command line,
 * so a recycled pid of an unrelated process is never touched — before starting its own.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ChildRecord {
  name: string;
  pid: number;
  /** A string the process's command line contains (its executable path). */
  command: string;
  /** The signal that stops it cleanly: SIGINT is Postgres's fast shutdown. */
  signal: NodeJS.Signals;
}

const fileIn = (dir: string) => path.join(dir, 'children.json');

function read(dir: string): ChildRecord[] {
  try {
    return existsSync(fileIn(dir)) ? (JSON.parse(readFileSync(fileIn(dir), 'utf8')) as ChildRecord[]) : [];
  } catch {
    return [];
  }
}

/** Records a child of this run. */
export function recordChild(dir: string, child: ChildRecord): void {
  const list = [...read(dir).filter((c) => c.pid !== child.pid), child];
  const tmp = `${fileIn(dir)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(list, null, 2)}\n`);
  renameSync(tmp, fileIn(dir));
}

/** Forgets this run's children (after they were stopped cleanly). */
export function clearChildren(dir: string): void {
  rmSync(fileIn(dir), { force: true });
}

/** The command line of a running process, or null when there is none (Linux /proc; elsewhere `ps`). */
function commandLine(pid: number): string | null {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but is not ours to signal; leave it alone.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return null;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Stops the children a previous, killed run left behind. Returns what it stopped, for the log.
 * Waits up to `graceMs` for each to exit on its clean signal, then kills it.
 */
export async function reapStaleChildren(dir: string, graceMs = 15_000): Promise<ChildRecord[]> {
  const stopped: ChildRecord[] = [];
  for (const c of read(dir)) {
    if (c.pid === process.pid) continue;
    const cmd = commandLine(c.pid);
    if (!cmd || !cmd.includes(c.command)) continue;
    try {
      process.kill(c.pid, c.signal);
    } catch {
      continue;
    }
    const deadline = Date.now() + graceMs;
    while (alive(c.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(c.pid)) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone in between
      }
      while (alive(c.pid)) await new Promise((r) => setTimeout(r, 50));
    }
    stopped.push(c);
  }
  clearChildren(dir);
  return stopped;
}
