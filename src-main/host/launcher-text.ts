/**
 * What `npm start` prints: the children's log lines made readable for a person (the API and worker
 * log pino JSON, which is for machines), why a child stopped, and why Electron is not used.
 */

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every pino line has, or that the line's text already says. */
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v', 'name']);

function value(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/** A pino JSON line → "INFO  message key=value …"; any other line unchanged. */
export function formatLogLine(line: string): string {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) return line;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(trimmed) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o.level !== 'number' || (typeof o.msg !== 'string' && o.err === undefined)) return line;
  const parts: string[] = [];
  const req = o.req as { method?: string; url?: string } | undefined;
  const res = o.res as { statusCode?: number } | undefined;
  const err = o.err as { message?: string; type?: string } | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (SKIP.has(k) || k === 'req' || k === 'res' || k === 'err' || v === undefined) continue;
    parts.push(`${k}=${value(v)}`);
  }
  const head = [
    (LEVELS[o.level] ?? `L${o.level}`).padEnd(5),
    typeof o.msg === 'string' ? o.msg : '',
    req?.method && req.url ? `${req.method} ${req.url}` : '',
    res?.statusCode !== undefined ? `→ ${res.statusCode}` : '',
    err?.message ? `error: ${err.message}` : '',
  ].filter(Boolean);
  return [...head, ...parts].join(' ');
}

/** Why a child stopped, in words, with the last lines it wrote to stderr. */
export function describeExit(
  name: string,
  code: number | null,
  signal: NodeJS.Signals | null,
  stderrTail: string[] = [],
): string {
  let why: string;
  if (signal === 'SIGKILL')
    why =
      'it was killed (SIGKILL). When nobody killed it by hand this is usually the system running out of memory: `journalctl -k | grep -i "out of memory"` (or `dmesg`) says so';
  else if (signal) why = `it was stopped by ${signal}`;
  else if (code === 0) why = 'it exited on its own (code 0)';
  else why = `it exited with code ${code ?? 'unknown'}`;
  const tail = stderrTail.filter((l) => l.trim()).slice(-8);
  return `${name} stopped unexpectedly: ${why}.${tail.length ? `\nIts last words:\n${tail.map((l) => `  ${l}`).join('\n')}` : ''}`;
}

const OFFLINE =
  /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|getaddrinfo|socket hang up/i;

/** Why Electron's binary could not be fetched, from its installer's stderr: offline, or its last line. */
export function electronUnavailable(stderr: string): string {
  if (OFFLINE.test(stderr)) return 'offline: the Electron binary cannot be downloaded now; using the browser host';
  const last = stderr.trim().split('\n').pop()?.trim();
  return `the Electron binary could not be installed (${last || 'its installer failed'}); using the browser host`;
}

export const START_HELP = `Usage: npm start [-- options]
Starts the local Atelier Cloud stack and the desktop app (Electron when its binary is installed or
can be fetched now, otherwise the UI in your browser). Ctrl-C stops everything.

Options:
  --no-stack          do not start the local cloud stack (local generation only)
  --browser           serve the UI to a browser even if Electron is available
  --user-data <dir>   browser host profile folder (a second device for sync)
  --port <n>          browser host port on 127.0.0.1 (default random)
  --memory-limit <n>  memory local jobs may use, e.g. 8GB (default: what is free)
  --help              this text

Ports and other settings (environment variables):
  ATELIER_HOST_PORT      browser host port (same as --port; default random)
  ATELIER_API_PORT       local cloud API (default 8787)
  ATELIER_PG_PORT        embedded PostgreSQL (default 54329)
  COGNITO_PORT           cognito-local, the sign-in service (default 9229)
  S3_PORT                s3rver, image storage (default 4569)
  ATELIER_MAILBOX_PORT   mailbox page with sign-up and reset codes (default 8025)
  ATELIER_MEMORY_LIMIT   same as --memory-limit
  ATELIER_USER_DATA      browser host profile folder (same as --user-data)
More on the stack: npm run stack -- --help`;
