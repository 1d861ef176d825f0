/**
 * Helpers for cloud-generation tests: an events socket that records what it receives, a worker
 * process that can be killed, and polling for database state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { CloudEvent } from '@atelier/common';
import WebSocket from 'ws';

const REPO = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(REPO, 'node_modules/.bin/node');

export interface EventRecorder {
  events: CloudEvent[];
  /** Resolves with the first recorded event (past or future) matching `pred`. */
  waitFor(pred: (e: CloudEvent) => boolean, timeoutMs?: number): Promise<CloudEvent>;
  close(): void;
}

/** Opens /v1/events, authenticates with the first message and records every event after `ready`. */
export async function recordEvents(baseUrl: string, accessToken: string): Promise<EventRecorder> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/events`, 'atelier.v1');
  const events: CloudEvent[] = [];
  const waiters: { pred: (e: CloudEvent) => boolean; resolve: (e: CloudEvent) => void }[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: accessToken })));
    ws.once('error', reject);
    ws.once('close', (code, reason) => reject(new Error(`events socket closed: ${code} ${String(reason)}`)));
    ws.on('message', (data) => {
      const e = JSON.parse(String(data)) as CloudEvent;
      if (e.type === 'ready') return resolve();
      events.push(e);
      for (const w of [...waiters])
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
    });
  });
  return {
    events,
    waitFor(pred, timeoutMs = 60_000) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for an event')), timeoutMs);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    close: () => ws.close(),
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `npm run cloud:worker`'s entry point (or another worker `script`, such as
 * support/gated-worker-child.ts) as its own process and waits for WORKER READY.
 */
export async function spawnWorker(
  env: Record<string, string>,
  script = path.join(REPO, 'cloud/src/worker/main.ts'),
): Promise<WorkerProcess> {
  const child = spawn(NODE, [script], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (out.includes('WORKER READY')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) => reject(new Error(`worker exited (${code}) before it was ready:\n${out}`)));
  });
  return { child, output: () => out, exited };
}

/** Polls `read` until `done` says yes (state that lives in the database, not in events). */
export async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not reached; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
