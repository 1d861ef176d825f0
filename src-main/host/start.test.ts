import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const start = path.resolve(import.meta.dirname, 'start.ts');
const run = (args: string[]) =>
  spawnSync(process.execPath, [start, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env } });

describe('npm start', () => {
  it('says which child stopped and why, with its last words, and exits non-zero', () => {
    // The browser host refuses this flag's value at start-up, so it exits with code 2 on its own.
    const r = run(['--no-stack', '--browser', '--memory-limit', 'lots']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('desktop stopped unexpectedly: it exited with code 2.');
    expect(r.stderr).toMatch(
      /Its last words:\n.*invalid --memory-limit \/ ATELIER_MEMORY_LIMIT: give a size such as 8GB/,
    );
    expect(r.stderr).toContain('Stopping the other services.');
    expect(r.stderr).not.toMatch(/npm start failed/);
  });

  it('lists the port variables in --help', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const v of [
      'ATELIER_HOST_PORT',
      'ATELIER_API_PORT',
      'ATELIER_PG_PORT',
      'COGNITO_PORT',
      'S3_PORT',
      'ATELIER_MAILBOX_PORT',
    ])
      expect(r.stdout).toContain(v);
  });
});
