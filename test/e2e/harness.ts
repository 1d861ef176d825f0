/**
 * Process and step plumbing for the browser e2e suite: free ports, child processes that are
 * ready when they print a line, and a sequential step runner that screenshots failures and
 * writes the `{ passed, failed }` report test/run.ts reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import type { Page } from 'playwright-core';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface Child {
  name: string;
  proc: ChildProcess;
  /** The last lines it printed, for failure reports. */
  tail: string[];
  stop(): Promise<void>;
}

/** Spawns a Node script and resolves once a stdout/stderr line matches `ready` (with that line's match). */
export function startChild(
  name: string,
  script: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs: number; log?: boolean },
): Promise<{ child: Child; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, [script, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  const tail: string[] = [];
  const child: Child = {
    name,
    proc,
    tail,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const hard = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        proc.once('exit', () => {
          clearTimeout(hard);
          resolve();
        });
        proc.kill('SIGINT');
      }),
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(
        new Error(
          `${name} did not become ready within ${opts.timeoutMs / 1000} s. Last output:\n${tail.slice(-60).join('\n')}`,
        ),
      );
    }, opts.timeoutMs);
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > 400) tail.shift();
      if (opts.log) console.log(`  [${name}] ${line}`);
      const m = opts.ready.exec(line);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    };
    readline.createInterface({ input: proc.stdout! }).on('line', onLine);
    readline.createInterface({ input: proc.stderr! }).on('line', onLine);
    proc.once('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${name} exited (${code ?? signal}) before it was ready. Last output:\n${tail.slice(-60).join('\n')}`,
        ),
      );
    });
  });
}

export interface StepResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  ms: number;
  error?: string;
}

/**
 * Runs steps in order. A failed step fails the ones after it that need it (they are reported as
 * failed, "not reached"), so a broken flow never looks like a passing one.
 */
export class Steps {
  readonly results: StepResult[] = [];
  private broken: string | null = null;
  private readonly artifacts: string;
  private readonly page: () => Page | null;

  constructor(artifacts: string, page: () => Page | null) {
    this.artifacts = artifacts;
    this.page = page;
    mkdirSync(artifacts, { recursive: true });
  }

  /**
   * `independent`: a check that leaves the app as it found it; its failure is reported (the run
   * fails) but does not stop the steps after it.
   */
  async run(name: string, fn: () => Promise<void>, opts: { independent?: boolean } = {}): Promise<boolean> {
    if (this.broken) {
      this.results.push({ name, status: 'failed', ms: 0, error: `not reached: "${this.broken}" failed` });
      console.log(`  ✘ ${name} (not reached)`);
      return false;
    }
    const started = Date.now();
    try {
      await fn();
      const ms = Date.now() - started;
      this.results.push({ name, status: 'passed', ms });
      console.log(`  ✔ ${name} (${(ms / 1000).toFixed(1)} s)`);
      return true;
    } catch (e) {
      const ms = Date.now() - started;
      const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
      this.results.push({ name, status: 'failed', ms, error });
      if (!opts.independent) this.broken = name;
      console.log(`  ✘ ${name} (${(ms / 1000).toFixed(1)} s)\n${indent(error)}`);
      const page = this.page();
      if (page) {
        const file = path.join(this.artifacts, `failed-${slug(name)}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
        console.log(`    screenshot: ${path.relative(process.cwd(), file)}`);
      }
      return false;
    }
  }

  /** A step that cannot run here, with the reason written down. */
  skip(name: string, reason: string): void {
    this.results.push({ name, status: 'skipped', ms: 0, error: reason });
    console.log(`  - ${name} (skipped: ${reason})`);
  }

  get failed(): number {
    return this.results.filter((r) => r.status === 'failed').length;
  }
  get passed(): number {
    return this.results.filter((r) => r.status === 'passed').length;
  }

  writeReport(file: string, extra: Record<string, unknown> = {}): void {
    mkdirSync(path.dirname(file), { recursive: true });
    const skipped = this.results.filter((r) => r.status === 'skipped').length;
    writeFileSync(
      file,
      `${JSON.stringify({ passed: this.passed, failed: this.failed, skipped, steps: this.results, ...extra }, null, 2)}\n`,
    );
  }
}

export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
const indent = (s: string) =>
  s
    .split('\n')
    .slice(0, 20)
    .map((l) => `    ${l}`)
    .join('\n');
