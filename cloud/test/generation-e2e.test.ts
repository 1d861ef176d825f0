/**
 * Cloud generation end to end on real Postgres, cognito-local, s3rver and the real engine on the
 * fixture model: API → queue → worker → S3 → image record → presigned download, plus the worker's
 * failure modes (SIGKILL mid-job, SIGTERM, S3 unreachable) and their effect on quota.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readPngMetadata } from '@atelier/engine';
import type { CloudEvent } from '@atelier/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createModelCatalogue } from '../src/catalogue/catalogue.ts';
import type { S3ObjectStore } from '../src/storage/s3-object-store.ts';
import { startWorker, type RunningWorker } from '../src/worker/main.ts';
import { recordEvents, spawnWorker, until, type EventRecorder, type WorkerProcess } from './gen-support.ts';
import { cliGenerate } from './support/cli.ts';
import { gatedLoader, StepGate } from './support/gated-loader.ts';
import { startTestS3, type TestS3 } from './support/s3.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  testConfig,
  type TestApp,
  type TestDatabase,
  type TestUser,
} from './support/index.ts';

let s3: TestS3;
let store: S3ObjectStore;
let db: TestDatabase;
let t: TestApp;
let baseUrl: string;
let env: Record<string, string>;
const cleanups: (() => Promise<unknown>)[] = [];

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  s3 = await startTestS3('gen-e2e');
  store = s3.store();
  env = {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_MAX_ATTEMPTS: '1',
    WORKER_ENGINE_THREADS: '1',
    JANITOR_INTERVAL_SECONDS: '0',
  };
  db = await createTestDatabase(env);
  const catalogue = createModelCatalogue(db.config.gen.catalogue, { modelsRoot: db.config.gen.modelsRoot });
  t = await buildTestApp({ db, overrides: { objectStore: store, catalogue } });
  baseUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await t?.close();
  await s3?.close();
});

async function inProcessWorker(extra: Record<string, string> = {}): Promise<RunningWorker> {
  const w = await startWorker(testConfig(db.url, { ...env, ...extra }));
  cleanups.push(() => w.stop(1000));
  return w;
}

/** The env a worker process needs: the same database and bucket as the API. */
function workerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    QUEUE_SUPERVISE_SECONDS: '1',
    ...env,
    ...extra,
  };
}

/** A worker process whose job holds after its first step until it is aborted (support/gated-worker-child.ts). */
async function spawned(extra: Record<string, string> = {}): Promise<WorkerProcess> {
  const w = await spawnWorker(workerEnv(extra), path.join(import.meta.dirname, 'support/gated-worker-child.ts'));
  cleanups.push(async () => {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exited;
  });
  return w;
}

async function signedIn(): Promise<{ user: TestUser; events: EventRecorder }> {
  const user = await createTestUser();
  expect((await t.app.inject({ url: '/v1/me', headers: auth(user) })).statusCode).toBe(200);
  const events = await recordEvents(baseUrl, user.accessToken);
  cleanups.push(async () => events.close());
  return { user, events };
}

const submit = (u: TestUser, body: Record<string, unknown>) =>
  t.app.inject({ method: 'POST', url: '/v1/generations', headers: auth(u), payload: body });

async function generationRow(id: string) {
  const r = await t.adminPool.query(
    'SELECT status, error_code, attempts, image_ids, progress_step FROM generations WHERE id = $1',
    [id],
  );
  return r.rows[0] as {
    status: string;
    error_code: string | null;
    attempts: number;
    image_ids: string[];
    progress_step: number;
  };
}

async function quota(userId: string) {
  const used = await t.adminPool.query<{ used: number }>(
    'SELECT COALESCE(sum(used), 0)::int AS used FROM usage_periods WHERE user_id = $1',
    [userId],
  );
  const ledger = await t.adminPool.query<{ reserves: number; refunds: number }>(
    `SELECT count(*) FILTER (WHERE kind = 'reserve')::int AS reserves,
            count(*) FILTER (WHERE kind = 'refund')::int AS refunds FROM usage_ledger WHERE user_id = $1`,
    [userId],
  );
  return { used: used.rows[0]!.used, ...ledger.rows[0]! };
}

async function imagesOf(generationId: string) {
  const r = await t.adminPool.query<{ id: string; user_id: string; batch_index: number }>(
    'SELECT id, user_id, batch_index FROM images WHERE generation_id = $1 ORDER BY batch_index',
    [generationId],
  );
  return r.rows;
}

const genEvents = (rec: EventRecorder, id: string) =>
  rec.events.filter(
    (e) =>
      e.type.startsWith('generation.') &&
      ('generationId' in e
        ? e.generationId
        : e.type === 'generation.queued' && 'generation' in e && e.generation.id) === id,
  );

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('a cloud generation, end to end', () => {
  it('streams queued, started, every step and succeeded, then serves a PNG that the CLI reproduces byte for byte', async () => {
    await inProcessWorker();
    const { user, events } = await signedIn();
    const request = {
      prompt: 'a lighthouse at dusk',
      negativePrompt: 'blurry',
      width: 64,
      height: 64,
      steps: 5,
      guidance: 7.5,
      scheduler: 'euler_a',
      seed: 424242,
      target: 'cloud',
    };
    const res = await submit(user, request);
    expect(res.statusCode).toBe(202);
    const gen = res.json();
    await events.waitFor((e) => e.type === 'generation.succeeded' && e.generationId === gen.id);

    const sequence = genEvents(events, gen.id).map((e) =>
      e.type === 'generation.progress' ? `progress ${e.step}/${e.total}` : e.type,
    );
    expect(sequence).toEqual([
      'generation.queued',
      'generation.started',
      'progress 1/5',
      'progress 2/5',
      'progress 3/5',
      'progress 4/5',
      'progress 5/5',
      'generation.succeeded',
    ]);
    const done = events.events.find((e) => e.type === 'generation.succeeded') as Extract<
      CloudEvent,
      { type: 'generation.succeeded' }
    >;
    expect(done.imageIds).toHaveLength(1);

    const img = (await t.app.inject({ url: `/v1/images/${done.imageIds[0]}`, headers: auth(user) })).json();
    expect(img).toMatchObject({ generationId: gen.id, width: 64, height: 64 });
    expect(new URL(img.url).pathname).toBe(`/${s3.bucket}/users/${user.sub}/images/${img.id}.png`);
    const png = new Uint8Array(await (await fetch(img.url)).arrayBuffer());
    expect(sha(png)).toBe(img.sha256);
    expect(png.byteLength).toBe(img.size);
    const meta = readPngMetadata(png);
    expect(meta).toMatchObject({
      positive_prompt: request.prompt,
      negative_prompt: request.negativePrompt,
      seed: request.seed,
      steps: request.steps,
      cfg_scale: request.guidance,
      scheduler: request.scheduler,
      width: request.width,
      height: request.height,
      model: { name: 'atelier-demo-shapes' },
      generation_mode: 'txt2img',
    });
    expect(img.metadata).toEqual(meta);
    const thumb = await fetch(img.thumbUrl);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toMatch(/^image\/(png|webp)/);

    // The same seed through the CLI gives the same bytes.
    const out = mkdtempSync(path.join(tmpdir(), 'atelier-cli-'));
    try {
      const file = path.join(out, 'again.png');
      expect(sha(cliGenerate(request, file))).toBe(img.sha256);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }

    expect(await generationRow(gen.id)).toMatchObject({ status: 'succeeded', attempts: 1, image_ids: [img.id] });
    expect(await quota(user.sub)).toEqual({ used: 1, reserves: 1, refunds: 0 });
  });

  it('records one image per batch slot with consecutive seeds', async () => {
    await inProcessWorker();
    const { user, events } = await signedIn();
    const gen = (
      await submit(user, { prompt: 'three pears', width: 64, height: 64, steps: 2, seed: 7, count: 3 })
    ).json();
    await events.waitFor((e) => e.type === 'generation.succeeded' && e.generationId === gen.id);
    const progress = genEvents(events, gen.id).filter((e) => e.type === 'generation.progress');
    expect(progress.map((e) => (e.type === 'generation.progress' ? e.step : -1))).toEqual([1, 2, 3, 4, 5, 6]);
    const list = (await t.app.inject({ url: '/v1/images', headers: auth(user) })).json();
    expect(list.items.map((i: { metadata: { seed: number } }) => i.metadata.seed).sort()).toEqual([7, 8, 9]);
    expect(await quota(user.sub)).toEqual({ used: 3, reserves: 1, refunds: 0 });
  });

  it('refuses an unknown model, or one the plan may not use, with MODEL_NOT_AVAILABLE before reserving', async () => {
    const { user } = await signedIn();
    for (const model of ['atelier-fixture-turbo', 'no-such-model']) {
      const res = await submit(user, { prompt: 'x', model });
      expect(res.statusCode).toBe(422);
      expect(res.json().error.code).toBe('MODEL_NOT_AVAILABLE');
    }
    expect(await quota(user.sub)).toEqual({ used: 0, reserves: 0, refunds: 0 });
  });
});

describe('cancel while running', () => {
  it('stops the worker generating it, records no image, and leaves the generation canceled', async () => {
    // The engine's steps pass a gate this test opens, so the cancel lands mid-run whatever the engine's speed.
    const gate = new StepGate();
    const gated = gatedLoader(gate);
    cleanups.push(() => gated.close());
    const worker = await startWorker(testConfig(db.url, env), { loader: gated.loader });
    cleanups.push(() => worker.stop(1000));
    const { user, events } = await signedIn();
    const gen = (await submit(user, { prompt: 'never mind', width: 64, height: 64, steps: 10, seed: 11 })).json();
    gate.release(2);
    await events.waitFor((e) => e.type === 'generation.progress' && e.generationId === gen.id && e.step >= 2);
    const res = await t.app.inject({ method: 'POST', url: `/v1/generations/${gen.id}/cancel`, headers: auth(user) });
    expect(res.statusCode).toBe(200);
    await events.waitFor((e) => e.type === 'generation.canceled' && e.generationId === gen.id);
    // The worker notices at its next progress write and stops the engine: the job completes in the
    // queue, with no further progress, no image and no success.
    gate.release(1);
    const job = await until(
      async () =>
        (await t.adminPool.query(`SELECT state FROM pgboss.job WHERE data->>'generationId' = $1`, [gen.id])).rows,
      (rows) => rows.length === 1 && rows[0].state === 'completed',
      30_000,
    );
    expect(job.map((r) => r.state)).toEqual(['completed']);
    const row = await generationRow(gen.id);
    expect(row.status).toBe('canceled');
    expect(row.progress_step).toBeLessThan(10);
    // No step waits at the gate any more (the engine was stopped), however far it is opened now.
    const passed = gate.passed;
    gate.release(Infinity);
    await worker.stop(1000);
    expect(gate.passed).toBe(passed);
    expect((await generationRow(gen.id)).progress_step).toBe(row.progress_step);
    expect(await imagesOf(gen.id)).toHaveLength(0);
    expect(genEvents(events, gen.id).map((e) => e.type)).not.toContain('generation.succeeded');
  });
});

describe('worker failures', () => {
  it('SIGKILL mid-job: another worker finishes it — exactly one image, quota charged once', async () => {
    const first = await spawned();
    const { user, events } = await signedIn();
    // The gated worker holds the job after its first step until it dies: no race with the engine's speed.
    const gen = (await submit(user, { prompt: 'a slow harbour', width: 64, height: 64, steps: 4, seed: 99 })).json();
    await events.waitFor((e) => e.type === 'generation.progress' && e.generationId === gen.id && e.step >= 1);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect((await generationRow(gen.id)).status).toBe('running');

    await inProcessWorker();
    await events.waitFor((e) => e.type === 'generation.succeeded' && e.generationId === gen.id, 90_000);
    const row = await generationRow(gen.id);
    expect(row).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(await imagesOf(gen.id)).toHaveLength(1);
    expect(row.image_ids).toEqual((await imagesOf(gen.id)).map((i) => i.id));
    expect(await quota(user.sub)).toEqual({ used: 1, reserves: 1, refunds: 0 });
  });

  it('SIGTERM mid-job: the worker hands the job back and exits cleanly; the next worker finishes it once', async () => {
    // The gated worker holds the job after its first step, so it cannot finish within the 1 s grace
    // period: it must hand the job back.
    const first = await spawned({ SHUTDOWN_GRACE_SECONDS: '1' });
    const { user, events } = await signedIn();
    const gen = (await submit(user, { prompt: 'a long night', width: 64, height: 64, steps: 4, seed: 5 })).json();
    await events.waitFor((e) => e.type === 'generation.progress' && e.generationId === gen.id && e.step >= 1);
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit, first.output()).toEqual({ code: 0, signal: null });
    // Handed back: queued again for another worker, nothing failed, nothing refunded.
    expect(await generationRow(gen.id)).toMatchObject({ status: 'queued' });
    expect(await quota(user.sub)).toEqual({ used: 1, reserves: 1, refunds: 0 });

    await inProcessWorker();
    await events.waitFor((e) => e.type === 'generation.succeeded' && e.generationId === gen.id, 90_000);
    expect(await imagesOf(gen.id)).toHaveLength(1);
    expect(await quota(user.sub)).toEqual({ used: 1, reserves: 1, refunds: 0 });
  });

  it('S3 unreachable: retries, then failed with STORAGE_UNAVAILABLE and the reservation refunded once', async () => {
    await inProcessWorker({ S3_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
    const { user, events } = await signedIn();
    const gen = (await submit(user, { prompt: 'lost at sea', width: 64, height: 64, steps: 2, seed: 3 })).json();
    const failed = await events.waitFor((e) => e.type === 'generation.failed' && e.generationId === gen.id, 90_000);
    expect(failed).toMatchObject({ errorCode: 'STORAGE_UNAVAILABLE' });
    const row = await generationRow(gen.id);
    expect(row).toMatchObject({
      status: 'failed',
      error_code: 'STORAGE_UNAVAILABLE',
      attempts: db.config.queue.retryLimit + 1,
    });
    expect(await imagesOf(gen.id)).toHaveLength(0);
    expect(await quota(user.sub)).toEqual({ used: 0, reserves: 1, refunds: 1 });
    const started = genEvents(events, gen.id).filter((e) => e.type === 'generation.started');
    expect(started).toHaveLength(db.config.queue.retryLimit + 1);
    expect(genEvents(events, gen.id).filter((e) => e.type === 'generation.failed')).toHaveLength(1);
  });
});
