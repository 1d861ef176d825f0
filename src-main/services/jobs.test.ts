import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError, GenerateRequest, newId, type Generation, type ImageMetadata, type LocalJob } from '@atelier/common';
import { openDatabase, type Db } from './db.ts';
import { createJobQueue, type CloudJobsPort } from './jobs.ts';
import { createLibrary } from './library.ts';
import { decideRoute } from './router.ts';
import { InMemoryEngine } from './testing/in-memory-engine.ts';
import { makePng, sampleMetadata } from './testing/png-fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A cloud double recording what was sent; generations complete when the test says so. */
class InMemoryCloud implements CloudJobsPort {
  online = true;
  sent: { key: string; prompt: string }[] = [];
  gens = new Map<string, Generation>();
  isOnline() {
    return this.online;
  }
  async createGeneration(request: GenerateRequest, key: string): Promise<Generation> {
    if (!this.online) throw new AppError('OFFLINE');
    this.sent.push({ key, prompt: request.prompt });
    const existing = [...this.gens.values()].find((g) => (g as Generation & { key?: string }).key === key);
    if (existing) return existing;
    const gen = {
      id: newId('gen'),
      status: 'queued',
      params: { ...request, seed: 7, model: 'fixture' },
      priority: 0,
      progress: { step: 0, total: request.steps },
      errorCode: null,
      attempts: 0,
      imageIds: [],
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      key,
    } as Generation;
    this.gens.set(gen.id, gen);
    return gen;
  }
  async getGeneration(id: string) {
    return this.gens.get(id)!;
  }
  async cancelGeneration(id: string) {
    this.gens.get(id)!.status = 'canceled';
  }
  /** What the cloud's image metadata adds (e.g. the uploaded inputs it was made from). */
  extraMetadata: Partial<ImageMetadata> = {};
  /** Runs while an image is being fetched (what else happens in the app during that await). */
  duringFetch: ((imageId: string) => Promise<void>) | null = null;
  async fetchImage(imageId: string) {
    await this.duringFetch?.(imageId);
    return {
      png: makePng({ rgb: [1, 2, imageId.length] }),
      metadata: { ...sampleMetadata('cloud fox'), ...this.extraMetadata },
    };
  }
}

function setup(
  opts: { dir?: string; cloud?: InMemoryCloud; engine?: InMemoryEngine; quota?: { used: number; limit: number } } = {},
) {
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'atelier-jobs-'));
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const db: Db = openDatabase(path.join(dir, 'library.db'));
  const library = createLibrary({
    db,
    filesDir: path.join(dir, 'images'),
    clock: { now: () => new Date() },
    urlFor: (f) => f,
  });
  const engine = opts.engine ?? new InMemoryEngine();
  const cloud = opts.cloud ?? new InMemoryCloud();
  const changed: LocalJob[] = [];
  const progressed: { jobId: string; step: number }[] = [];
  const queue = createJobQueue({
    db,
    clock: { now: () => new Date() },
    library,
    engine,
    cloud,
    resolveModel: async (m) => (m === 'missing' ? null : { id: m ?? 'fixture', path: '/models/fixture' }),
    route: async (req) =>
      decideRoute({
        requested: req.target,
        count: req.count,
        providers: [{ name: 'cpu', usable: true, gpu: false }],
        modelInstalled: true,
        signedIn: true,
        online: cloud.online,
        plan: 'free',
        quota: opts.quota ?? { used: 0, limit: 100 },
      }),
    events: {
      changed: (j) => changed.push(j),
      progressed: (p) => progressed.push(p),
      libraryChanged: () => undefined,
    },
  });
  cleanups.push(async () => {
    await queue.close();
    db.close();
  });
  return { dir, db, library, engine, cloud, queue, changed, progressed };
}
const req = (prompt: string, extra: Partial<GenerateRequest> = {}) =>
  GenerateRequest.parse({ prompt, steps: 3, width: 64, height: 64, target: 'local', ...extra });
/** Polls `fn` until it holds; fails after `timeoutMs` instead of hanging the run. */
const until = async (fn: () => boolean, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`condition not reached within ${timeoutMs} ms: ${fn.toString()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('job queue', () => {
  it('runs a local job on the engine, reports progress and adds the image to the library', async () => {
    const { queue, library, progressed, changed } = setup();
    const { jobs, decision } = await queue.submit(req('a lighthouse', { seed: 99 }));
    expect(decision).toMatchObject({ target: 'local', provider: 'cpu' });
    await until(() => queue.get(jobs[0]!.id).state === 'succeeded');
    const job = queue.get(jobs[0]!.id);
    expect(job).toMatchObject({ seed: 99, step: 3, total: 3, target: 'local' });
    expect(progressed.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(changed.map((c) => c.state)).toEqual(['queued', 'running', 'succeeded']);
    const img = library.get(job.imageIds[0]!);
    expect(img.metadata).toMatchObject({ positive_prompt: 'a lighthouse', seed: 99 });
  });

  it('a job starting from library pictures hands their files to the engine; a picture no longer there fails with INPUT_IMAGE_NOT_FOUND', async () => {
    const { queue, library, engine } = setup();
    const startPng = makePng({ rgb: [10, 20, 30] });
    const maskPng = makePng({ rgb: [255, 255, 255] });
    const start = await library.saveImage({ png: startPng, origin: 'local' });
    const mask = await library.saveImage({ png: maskPng, origin: 'local' });
    const { jobs } = await queue.submit(req('a door', { initImage: start.id, mask: mask.id, strength: 0.8 }));
    await until(() => queue.get(jobs[0]!.id).state === 'succeeded');
    expect(engine.calls.at(-1)!.inputs).toEqual({ initImage: new Uint8Array(startPng), mask: new Uint8Array(maskPng) });

    const gone = await queue.submit(req('a door', { initImage: 'img_00000000000000000000NOPE' }));
    await until(() => queue.get(gone.jobs[0]!.id).state === 'failed');
    expect(queue.get(gone.jobs[0]!.id).error).toMatchObject({ code: 'INPUT_IMAGE_NOT_FOUND' });
  });

  it('survives a restart: the running job is queued again, order and reorder are kept, cancel works', async () => {
    const engine = new InMemoryEngine();
    engine.hold();
    const first = setup({ engine });
    const started = engine.nextStart();
    const a = (await first.queue.submit(req('a'))).jobs[0]!;
    const b = (await first.queue.submit(req('b'))).jobs[0]!;
    const c = (await first.queue.submit(req('c'))).jobs[0]!;
    await started;
    expect(first.queue.get(a.id).state).toBe('running');
    // Simulate the app quitting mid-job: close without letting the job finish.
    await cleanups.pop()!();

    const engine2 = new InMemoryEngine();
    engine2.hold();
    const second = setup({ dir: first.dir, engine: engine2 });
    second.queue.reorder(c.id, 0);
    expect(second.queue.list().map((j) => [j.request.prompt, j.state])).toEqual([
      ['c', 'queued'],
      ['a', 'queued'],
      ['b', 'queued'],
    ]);
    await second.queue.cancel(b.id);
    const started2 = engine2.nextStart();
    second.queue.start();
    await started2;
    expect(engine2.calls.map((x) => x.prompt)).toEqual(['c']);
    engine2.release();
    await until(() => second.queue.get(a.id).state === 'succeeded');
    expect(engine2.calls.map((x) => x.prompt)).toEqual(['c', 'a']);
    expect(second.queue.get(b.id).state).toBe('canceled');
    await expect(second.queue.cancel(a.id)).rejects.toMatchObject({ code: 'GENERATION_NOT_CANCELABLE' });
  });

  it('cancels a running local job through the abort signal', async () => {
    const engine = new InMemoryEngine();
    engine.hold();
    const { queue } = setup({ engine });
    const started = engine.nextStart();
    const job = (await queue.submit(req('slow'))).jobs[0]!;
    await started;
    await queue.cancel(job.id);
    await until(() => queue.get(job.id).state === 'canceled');
  });

  it('offers a cloud retry after a local out-of-memory failure, and the retry runs in the cloud', async () => {
    const engine = new InMemoryEngine();
    engine.failWith = new AppError('ENGINE_OUT_OF_MEMORY');
    const { queue, cloud, library } = setup({ engine });
    const job = (await queue.submit(req('huge'))).jobs[0]!;
    await until(() => queue.get(job.id).state === 'failed');
    expect(queue.get(job.id).error).toMatchObject({ code: 'ENGINE_OUT_OF_MEMORY', offerCloudRetry: true });

    const retried = await queue.retry(job.id, 'cloud');
    expect(retried.target).toBe('cloud');
    await until(() => queue.get(job.id).cloudGenerationId !== null);
    const gen = cloud.gens.get(queue.get(job.id).cloudGenerationId!)!;
    await queue.onCloudEvent({ type: 'generation.progress', generationId: gen.id, step: 2, total: 3 });
    expect(queue.get(job.id).step).toBe(2);
    const cloudImageId = newId('img');
    await queue.onCloudEvent({ type: 'generation.succeeded', generationId: gen.id, imageIds: [cloudImageId] });
    const done = queue.get(job.id);
    expect(done.state).toBe('succeeded');
    expect(library.get(done.imageIds[0]!)).toMatchObject({ origin: 'cloud' });
    expect(library.getByCloudId(cloudImageId)?.id).toBe(done.imageIds[0]);
  });

  it('a cloud result made from library pictures names them as this library knows them, also when sync brought it first', async () => {
    const { queue, cloud, library } = setup();
    cloud.extraMetadata = {
      generation_mode: 'inpaint',
      strength: 0.6,
      init_image: 'inp_0000000000000000000000',
      init_mask: 'inp_0000000000000000000001',
    };
    const start = newId('img');
    const mask = newId('img');
    for (const [i, existing] of [false, true].entries()) {
      const job = (await queue.submit(req(`door ${i}`, { target: 'cloud', initImage: start, mask, strength: 0.6 })))
        .jobs[0]!;
      await until(() => queue.get(job.id).cloudGenerationId !== null);
      const cloudImageId = newId('img');
      if (existing) {
        // Gallery sync downloaded it before the job heard it was done: the cloud's names.
        const { png, metadata } = await cloud.fetchImage(cloudImageId);
        await library.saveImage({ png, origin: 'cloud', cloudId: cloudImageId, metadata });
      }
      await queue.onCloudEvent({
        type: 'generation.succeeded',
        generationId: queue.get(job.id).cloudGenerationId!,
        imageIds: [cloudImageId],
      });
      const saved = library.get(queue.get(job.id).imageIds[0]!);
      expect(saved.metadata).toMatchObject({ init_image: start, init_mask: mask, strength: 0.6 });
    }
  });

  it('a cloud result that gallery sync writes while the job is fetching it is that row, and the job succeeds', async () => {
    const { queue, cloud, library } = setup();
    const job = (await queue.submit(req('a raced fox', { target: 'cloud' }))).jobs[0]!;
    await until(() => queue.get(job.id).cloudGenerationId !== null);
    const cloudImageId = newId('img');
    // The pull writes the row (thumbnail first) between the job's check and its save.
    cloud.duringFetch = async (id) => {
      await library.saveImage({ png: makePng({ rgb: [9, 9, 9] }), origin: 'cloud', cloudId: id });
    };
    await queue.onCloudEvent({
      type: 'generation.succeeded',
      generationId: queue.get(job.id).cloudGenerationId!,
      imageIds: [cloudImageId],
    });
    const done = queue.get(job.id);
    expect(done.state).toBe('succeeded');
    expect(done.imageIds).toEqual([library.getByCloudId(cloudImageId)!.id]);
  });

  it('keeps cloud jobs waiting while offline and sends them once, with the same Idempotency-Key, when back online', async () => {
    const cloud = new InMemoryCloud();
    cloud.online = false;
    const { queue } = setup({ cloud });
    const { jobs, decision } = await queue.submit(req('offline fox', { target: 'cloud' }));
    expect(decision.warning).toMatch(/offline/);
    expect(queue.get(jobs[0]!.id).state).toBe('waiting_online');
    expect(cloud.sent).toEqual([]);
    cloud.online = true;
    queue.online();
    await until(() => queue.get(jobs[0]!.id).state === 'running');
    queue.online(); // a second "online" must not resend a running job
    expect(cloud.sent).toHaveLength(1);
    const key = cloud.sent[0]!.key;
    // If the app crashed after sending but before storing the generation id, the resend reuses the key.
    const row = queue.get(jobs[0]!.id);
    expect(row.cloudGenerationId).not.toBeNull();
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses a cloud job over quota, and fails a local job whose model is missing without offering the cloud', async () => {
    const { queue } = setup({ quota: { used: 99, limit: 100 } });
    await expect(queue.submit(req('x', { target: 'cloud', count: 2 }))).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
    });
    expect(queue.list()).toEqual([]);
    const job = (await queue.submit(req('x', { model: 'missing' }))).jobs[0]!;
    await until(() => queue.get(job.id).state === 'failed');
    expect(queue.get(job.id).error).toMatchObject({ code: 'ENGINE_MODEL_NOT_FOUND', offerCloudRetry: false });
  });
});
