/**
 * A real API process (`node src/server.ts`) for tests that need several replicas on one database
 * (shared limits in Redis, revocations heard by every process). It resolves once the process logs
 * `api listening`; `lines` keeps everything it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stackInfo, type TestDatabase } from './index.ts';

const SERVER = path.resolve(import.meta.dirname, '../../src/server.ts');

export interface ApiProcess {
  child: ChildProcess;
  url: string;
  lines: string[];
  stop(): Promise<void>;
}

/** The environment of an API process on a test database, with the run's cognito-local. */
export function apiProcessEnv(db: TestDatabase, env: Record<string, string> = {}): Record<string, string> {
  const s = stackInfo();
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: db.url,
    DATABASE_POOL_MAX: '3',
    COGNITO_REGION: 'local',
    COGNITO_ENDPOINT: s.cognitoEndpoint,
    COGNITO_USER_POOL_ID: s.userPoolId,
    COGNITO_CLIENT_ID: s.clientId,
    COGNITO_ISSUER: s.issuer,
    ATELIER_API_PORT: '0',
    PERIODIC_WORK: 'off',
    ...env,
  };
}

/** `env` is the whole environment of the process (give it PATH: the test's own is not inherited). */
export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const child = spawn(process.execPath, [SERVER], { env, stdio: 'pipe' });
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  child.stderr!.on('data', (d) => lines.push(String(d)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`API process did not start:\n${lines.join('\n')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`API process exited ${code}:\n${lines.join('\n')}`)));
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'api listening' && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        /* not a log line */
      }
    });
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { child, url, lines, stop };
}
