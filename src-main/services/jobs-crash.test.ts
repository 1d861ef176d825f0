import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GenerateRequest } from '@atelier/common';
import { openDatabase, type Db } from './db.ts';
import { createJobQueue, CRASHED_MESSAGE } from './jobs.ts';
import { createLibrary } from './library.ts';
import { decideRoute } from './router.ts';
import { InMemoryEngine } from './testing/in-memory-engine.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** One app start on the profile in `dir`; `crash()` abandons it the way a killed process does (no close). */
function start(dir: string, engine: InMemoryEngine) {
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const db: Db = openDatabase(path.join(dir, 'library.db'));
  const library = createLibrary({
    db,
    filesDir: path.join(dir, 'images'),
    clock: { now: () => new Date() },
    urlFor: (f) => f,
  });
  const queue = createJobQueue({
    db,
    clock: { now: () => new Date() },
    library,
    engine,
    cloud: null,
    resolveModel: async (m) => ({ id: m ?? 'fixture', path: '/models/fixture' }),
    route: async (req) =>
      decideRoute({
        requested: req.target,
        count: req.count,
        providers: [{ name: 'cpu', usable: true, gpu: false }],
        modelInstalled: true,
        signedIn: false,
        online: false,
        plan: 'free',
        quota: null,
      }),
    events: { changed: () => undefined, progressed: () => undefined, libraryChanged: () => undefined },
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await queue.close();
    db.close();
  };
  cleanups.push(close);
  return { queue, close, crash: () => void (closed = true) };
}

const req = GenerateRequest.parse({ prompt: 'a fox', steps: 3, width: 64, height: 64, target: 'local' });

describe('a job that takes the app down', () => {
  it('is resumed after the first crash, failed with the reason after the second, and runs again only when retried', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const e1 = new InMemoryEngine();
    e1.hold();
    const run1 = start(dir, e1);
    const started1 = e1.nextStart();
    const { jobs } = await run1.queue.submit(req);
    const id = jobs[0]!.id;
    await started1;
    run1.crash();

    // Second start: resumed from step 0, and it takes the app down again.
    const e2 = new InMemoryEngine();
    e2.hold();
    const run2 = start(dir, e2);
    expect(run2.queue.get(id)).toMatchObject({ state: 'queued', step: 0 });
    const started2 = e2.nextStart();
    run2.queue.start();
    await started2;
    run2.crash();

    // Third start: not resumed; failed with the reason and a cloud retry offered.
    const e3 = new InMemoryEngine();
    const run3 = start(dir, e3);
    run3.queue.start();
    const job = run3.queue.get(id);
    expect(job.state).toBe('failed');
    expect(job.error).toEqual({ code: 'ENGINE_FAILED', message: CRASHED_MESSAGE, offerCloudRetry: true });
    expect(e3.calls).toHaveLength(0);

    // A person's retry starts the count again and runs it.
    await run3.queue.retry(id);
    await expect.poll(() => run3.queue.get(id).state, { timeout: 10_000 }).toBe('succeeded');
    expect(e3.calls).toHaveLength(1);
  });

  it('does not count a clean quit as a crash', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atelier-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    for (let i = 0; i < 3; i++) {
      const e = new InMemoryEngine();
      e.hold();
      const run = start(dir, e);
      const started = e.nextStart();
      if (i === 0) await run.queue.submit(req);
      else run.queue.start();
      await started;
      await run.close();
    }
    const run = start(dir, new InMemoryEngine());
    expect(run.queue.list()[0]).toMatchObject({ state: 'queued', error: null });
  });
});
