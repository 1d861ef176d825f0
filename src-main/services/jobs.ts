/**
 * The persisted generation queue. Jobs live in SQLite so the queue survives a restart (a job that
 * was running locally is queued again; a cloud job keeps its generation id and is reconciled with
 * the API). A local job that was still running when the process died (it was not closed) counts a
 * crash; after MAX_CRASHES it is not resumed but fails with the reason, so a job that takes the
 * machine down cannot do it again on every start. Local jobs run one at a time on the engine host; cloud jobs are sent as soon as the
 * app is online, each with its own Idempotency-Key, so a resend after a crash or an outage never
 * creates (or charges for) a second generation.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  AppError,
  GenerateRequest,
  LocalImageId,
  newId,
  randomSeed,
  type CloudEvent,
  type ErrorCode,
  type Generation,
  type ImageMetadata,
  type LocalJob,
  type RouteDecision,
} from '@atelier/common';
import type { Clock } from './clock.ts';
import type { Db } from './db.ts';
import type { EngineProgress, EnginePort } from './engine.ts';
import type { Library } from './library.ts';
import type { RouteOutcome } from './router.ts';

/** What the queue needs from the cloud client. */
export interface CloudJobsPort {
  isOnline(): boolean;
  createGeneration(request: GenerateRequest, idempotencyKey: string): Promise<Generation>;
  getGeneration(id: string): Promise<Generation>;
  cancelGeneration(id: string): Promise<void>;
  fetchImage(imageId: string): Promise<{ png: Uint8Array; metadata: ImageMetadata }>;
}

export interface JobEvents {
  changed(job: LocalJob): void;
  progressed(p: {
    jobId: string;
    step: number;
    total: number;
    elapsedMs: number;
    preview?: string;
    /** Which image of the batch is being made (1-based). */
    image?: { index: number; count: number };
    /** Present while a large image is decoded in tiles. */
    decode?: { tile: number; tiles: number };
  }): void;
  libraryChanged(ids: string[]): void;
}

export interface JobQueueOptions {
  db: Db;
  clock: Clock;
  library: Library;
  engine: EnginePort;
  /** Resolves a model id (or the default when absent) to its installed folder; null when not installed. */
  resolveModel(model: string | undefined): Promise<{ id: string; path: string } | null>;
  cloud: CloudJobsPort | null;
  route(request: GenerateRequest): Promise<RouteOutcome>;
  events: JobEvents;
  /** Called when a job fails unexpectedly, for the log. */
  onError?: (err: unknown, jobId: string) => void;
}

interface JobRow {
  id: string;
  request: string;
  target: 'local' | 'cloud';
  reason: string;
  state: LocalJob['state'];
  position: number;
  step: number;
  total: number;
  seed: number | null;
  image_ids: string;
  error: string | null;
  cloud_generation_id: string | null;
  idempotency_key: string;
  created_at: string;
  updated_at: string;
}

const OFFER_CLOUD: ReadonlySet<ErrorCode> = new Set([
  'ENGINE_OUT_OF_MEMORY',
  'ENGINE_MEMORY_INSUFFICIENT',
  'ENGINE_PROVIDER_UNAVAILABLE',
]);
/** A local job that was running when the app died this many times is failed instead of resumed. */
export const MAX_CRASHES = 2;
export const CRASHED_MESSAGE =
  'This job stopped the app twice while it ran (the computer probably ran out of memory), so it was not started again. Try a smaller size or fewer images, or run it in the cloud.';
const ACTIVE = "('queued', 'waiting_online', 'running')";

const errorJson = (code: string, message: string, offerCloudRetry: boolean) =>
  JSON.stringify({ code, message, offerCloudRetry });

function toJob(r: JobRow): LocalJob {
  return {
    id: r.id,
    request: JSON.parse(r.request) as GenerateRequest,
    target: r.target,
    reason: r.reason,
    state: r.state,
    position: r.position,
    step: r.step,
    total: r.total,
    seed: r.seed,
    imageIds: JSON.parse(r.image_ids) as string[],
    error: r.error === null ? null : (JSON.parse(r.error) as LocalJob['error']),
    cloudGenerationId: r.cloud_generation_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type JobQueue = ReturnType<typeof createJobQueue>;

export function createJobQueue(opts: JobQueueOptions) {
  const { db, clock, library, engine, cloud, events } = opts;
  const iso = () => clock.now().toISOString();
  const running = new Map<string, AbortController>();
  let localBusy = false;
  let closed = false;
  let idle: Promise<void> = Promise.resolve();

  // Crashes per job live beside the jobs table (created here, so the queue owns the whole rule).
  db.exec('CREATE TABLE IF NOT EXISTS job_crashes (job_id TEXT PRIMARY KEY, crashes INTEGER NOT NULL)');

  // Recovery from the previous run. close() re-queues the local job it interrupts, so a local job
  // still marked running means the process died under it: count the crash, and queue it again
  // (from step 0) unless that was its MAX_CRASHES-th. Cloud jobs that never got a generation id
  // are re-sent with their original key.
  db.transaction(() => {
    const crashed = db.prepare("SELECT id FROM jobs WHERE state = 'running' AND target = 'local'").all() as {
      id: string;
    }[];
    for (const { id } of crashed) {
      const { crashes } = db
        .prepare(
          `INSERT INTO job_crashes (job_id, crashes) VALUES (?, 1)
           ON CONFLICT (job_id) DO UPDATE SET crashes = crashes + 1 RETURNING crashes`,
        )
        .get(id) as { crashes: number };
      if (crashes >= MAX_CRASHES)
        db.prepare("UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE id = ?").run(
          errorJson('ENGINE_FAILED', CRASHED_MESSAGE, true),
          iso(),
          id,
        );
      else db.prepare("UPDATE jobs SET state = 'queued', step = 0, updated_at = ? WHERE id = ?").run(iso(), id);
    }
    db.prepare(
      "UPDATE jobs SET state = 'queued', updated_at = ? WHERE state = 'running' AND target = 'cloud' AND cloud_generation_id IS NULL",
    ).run(iso());
  })();

  const row = (id: string) => db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  function get(id: string): LocalJob {
    const r = row(id);
    if (!r) throw new AppError('NOT_FOUND', `job ${id} not found`);
    return toJob(r);
  }
  function patch(id: string, fields: Partial<Omit<JobRow, 'id'>>, emit = true): LocalJob {
    const keys = Object.keys(fields);
    db.prepare(
      `UPDATE jobs SET ${keys.map((k) => `${k} = @${k}`).join(', ')}, updated_at = @updated_at WHERE id = @id`,
    ).run({
      ...fields,
      updated_at: iso(),
      id,
    });
    const job = get(id);
    if (emit) events.changed(job);
    return job;
  }

  function nextPosition(): number {
    return ((db.prepare('SELECT max(position) AS p FROM jobs').get() as { p: number | null }).p ?? -1) + 1;
  }

  function insert(request: GenerateRequest, outcome: RouteOutcome): LocalJob {
    const id = newId('job');
    const now = iso();
    db.prepare(
      `INSERT INTO jobs (id, request, target, reason, state, position, step, total, seed, idempotency_key, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      JSON.stringify(request),
      outcome.decision.target,
      outcome.decision.reason,
      outcome.waitOnline ? 'waiting_online' : 'queued',
      nextPosition(),
      request.steps * request.count,
      request.seed ?? null,
      randomUUID(),
      now,
      now,
    );
    const job = get(id);
    events.changed(job);
    return job;
  }

  async function submit(input: GenerateRequest): Promise<{ jobs: LocalJob[]; decision: RouteDecision }> {
    const request = GenerateRequest.parse(input);
    const outcome = await opts.route(request);
    if (outcome.blocked)
      throw new AppError(outcome.blocked, outcome.decision.warning ?? undefined, {
        ...(outcome.decision.warning ? { userMessage: outcome.decision.warning } : {}),
      });
    const job = insert(request, outcome);
    pump();
    return { jobs: [job], decision: outcome.decision };
  }

  function list(): LocalJob[] {
    return (db.prepare('SELECT * FROM jobs ORDER BY position, id').all() as JobRow[]).map(toJob);
  }

  async function cancel(id: string): Promise<void> {
    const job = get(id);
    if (job.state === 'queued' || job.state === 'waiting_online') {
      patch(id, { state: 'canceled' });
    } else if (job.state === 'running') {
      const ac = running.get(id);
      if (ac) ac.abort();
      if (job.target === 'cloud' && job.cloudGenerationId && cloud) {
        await cloud.cancelGeneration(job.cloudGenerationId).catch(() => undefined);
        patch(id, { state: 'canceled' });
      } else if (!ac) patch(id, { state: 'canceled' });
    } else throw new AppError('GENERATION_NOT_CANCELABLE', `job ${id} is ${job.state}`);
  }

  async function retry(id: string, target?: 'local' | 'cloud'): Promise<LocalJob> {
    const job = get(id);
    if (job.state !== 'failed' && job.state !== 'canceled')
      throw new AppError('CONFLICT', `job ${id} is ${job.state}; only failed or canceled jobs can be retried`);
    const request = { ...job.request, target: target ?? job.target };
    const outcome = await opts.route(request);
    if (outcome.blocked) throw new AppError(outcome.blocked, outcome.decision.warning ?? undefined);
    // Asked for by a person: the new attempt starts with no crashes counted.
    db.prepare('DELETE FROM job_crashes WHERE job_id = ?').run(id);
    const next = patch(id, {
      request: JSON.stringify(request),
      target: outcome.decision.target,
      reason: outcome.decision.reason,
      state: outcome.waitOnline ? 'waiting_online' : 'queued',
      position: nextPosition(),
      step: 0,
      error: null,
      cloud_generation_id: null,
      image_ids: '[]',
      // A new attempt is a new generation: a fresh key, or the cloud would answer with the failed one.
      idempotency_key: randomUUID(),
    });
    pump();
    return next;
  }

  /** Moves a waiting job to `position` among the waiting jobs (0 = next to run). */
  function reorder(id: string, position: number): void {
    const job = get(id);
    if (job.state !== 'queued' && job.state !== 'waiting_online')
      throw new AppError('CONFLICT', `job ${id} is ${job.state}; only waiting jobs can be reordered`);
    db.transaction(() => {
      const waiting = (
        db.prepare("SELECT id FROM jobs WHERE state IN ('queued', 'waiting_online') ORDER BY position, id").all() as {
          id: string;
        }[]
      ).map((r) => r.id);
      const order = waiting.filter((w) => w !== id);
      order.splice(Math.min(position, order.length), 0, id);
      const base = (db.prepare(`SELECT min(position) AS p FROM jobs WHERE state IN ${ACTIVE}`).get() as { p: number })
        .p;
      const set = db.prepare('UPDATE jobs SET position = ?, updated_at = ? WHERE id = ?');
      const now = iso();
      order.forEach((jid, i) => set.run(base + i, now, jid));
    })();
    for (const j of list()) if (j.state === 'queued' || j.state === 'waiting_online') events.changed(j);
  }

  // Running ----------------------------------------------------------------------------------

  function pump(): void {
    if (closed) return;
    if (!localBusy) {
      const next = db
        .prepare("SELECT * FROM jobs WHERE state = 'queued' AND target = 'local' ORDER BY position, id LIMIT 1")
        .get() as JobRow | undefined;
      if (next) {
        localBusy = true;
        idle = runLocal(toJob(next)).finally(() => {
          localBusy = false;
          pump();
        });
      }
    }
    if (cloud?.isOnline()) {
      const waiting = db
        .prepare(
          "SELECT * FROM jobs WHERE state IN ('queued', 'waiting_online') AND target = 'cloud' ORDER BY position, id",
        )
        .all() as JobRow[];
      for (const r of waiting) void sendCloud(r);
    } else if (cloud) {
      const queued = db.prepare("SELECT id FROM jobs WHERE state = 'queued' AND target = 'cloud'").all() as {
        id: string;
      }[];
      for (const r of queued) patch(r.id, { state: 'waiting_online' });
    }
  }

  /**
   * A local job's starting image and mask are pictures of the library, named by image id: their
   * files are read here, when the job runs (a deleted picture fails the job with a clear code).
   */
  async function startPictures(request: GenerateRequest): Promise<{ initImage: Uint8Array; mask?: Uint8Array } | null> {
    if (request.initImage === undefined) return null;
    const read = async (ref: string, what: string) => {
      let file: string;
      try {
        // A picture synced down with its thumbnail only is downloaded first (localPath).
        file = await library.localPath(ref);
      } catch (e) {
        if (AppError.is(e, 'IMAGE_NOT_DOWNLOADED')) throw e;
        throw new AppError('INPUT_IMAGE_NOT_FOUND', `${what} ${ref} is not in the library`, {
          userMessage: `The ${what} is no longer in your library. Pick another picture.`,
        });
      }
      return new Uint8Array(await readFile(file));
    };
    const initImage = await read(request.initImage, 'starting image');
    return request.mask === undefined ? { initImage } : { initImage, mask: await read(request.mask, 'mask') };
  }

  async function runLocal(job: LocalJob): Promise<void> {
    const ac = new AbortController();
    running.set(job.id, ac);
    const started = clock.now().getTime();
    const seed = job.seed ?? job.request.seed ?? randomSeed();
    patch(job.id, { state: 'running', seed, step: 0 });
    try {
      const model = await opts.resolveModel(job.request.model);
      if (!model)
        throw new AppError('ENGINE_MODEL_NOT_FOUND', `model ${job.request.model ?? '(default)'} is not installed`);
      const inputs = await startPictures(job.request);
      const { images } = await engine.generate(
        { ...job.request, seed, model: model.id, modelPath: model.path },
        {
          signal: ac.signal,
          ...(inputs ? { inputs } : {}),
          onProgress: (p: EngineProgress) => {
            if (ac.signal.aborted) return;
            patch(job.id, { step: p.step, total: p.total }, false);
            events.progressed({
              jobId: job.id,
              step: p.step,
              total: p.total,
              elapsedMs: clock.now().getTime() - started,
              ...(p.image ? { image: p.image } : {}),
              ...(p.decode ? { decode: p.decode } : {}),
              ...(p.preview ? { preview: p.preview } : {}),
            });
          },
        },
      );
      if (ac.signal.aborted) throw new AppError('CANCELED');
      const ids: string[] = [];
      for (const img of images) {
        const saved = await library.saveImage({
          png: img.png,
          origin: 'local',
          jobId: job.id,
          ...(img.metadata ? { metadata: img.metadata } : {}),
        });
        ids.push(saved.id);
      }
      patch(job.id, { state: 'succeeded', image_ids: JSON.stringify(ids), step: get(job.id).total });
      events.libraryChanged(ids);
    } catch (e) {
      if (closed) return; // shutting down: the job stays running and is re-queued at the next start
      if (ac.signal.aborted || AppError.is(e, 'CANCELED')) patch(job.id, { state: 'canceled' });
      else {
        const err =
          e instanceof AppError ? e : new AppError('ENGINE_FAILED', (e as Error)?.message ?? String(e), { cause: e });
        if (!(e instanceof AppError)) opts.onError?.(e, job.id);
        patch(job.id, { state: 'failed', error: errorJson(err.code, err.userMessage, OFFER_CLOUD.has(err.code)) });
      }
    } finally {
      running.delete(job.id);
    }
  }

  const sending = new Set<string>();
  async function sendCloud(r: JobRow): Promise<void> {
    if (!cloud || sending.has(r.id)) return;
    sending.add(r.id);
    try {
      const request = JSON.parse(r.request) as GenerateRequest;
      // Idempotency-Key: the same key on every resend of this attempt.
      const gen = await cloud.createGeneration({ ...request, target: 'cloud' }, r.idempotency_key);
      if (get(r.id).state === 'canceled') {
        await cloud.cancelGeneration(gen.id).catch(() => undefined);
        return;
      }
      patch(r.id, {
        state: 'running',
        cloud_generation_id: gen.id,
        seed: gen.params.seed,
        total: gen.progress.total || r.total,
      });
      await applyGeneration(r.id, gen);
    } catch (e) {
      if (AppError.is(e, 'OFFLINE')) patch(r.id, { state: 'waiting_online' });
      else {
        const err = e instanceof AppError ? e : new AppError('INTERNAL', String(e), { cause: e });
        patch(r.id, { state: 'failed', error: errorJson(err.code, err.userMessage, false) });
      }
    } finally {
      sending.delete(r.id);
    }
  }

  /** Brings a cloud job in line with the generation's state (from an event or a poll). */
  async function applyGeneration(
    jobId: string,
    gen: Pick<Generation, 'status' | 'imageIds' | 'errorCode' | 'progress'>,
  ): Promise<void> {
    const job = get(jobId);
    if (job.state !== 'running') return;
    if (gen.status === 'succeeded') await finishCloud(jobId, gen.imageIds);
    else if (gen.status === 'failed')
      patch(jobId, {
        state: 'failed',
        error: errorJson(
          gen.errorCode ?? 'INTERNAL',
          `The cloud generation failed (${gen.errorCode ?? 'unknown'}).`,
          false,
        ),
      });
    else if (gen.status === 'canceled') patch(jobId, { state: 'canceled' });
    else if (gen.progress.step > job.step) patch(jobId, { step: gen.progress.step, total: gen.progress.total });
  }

  /**
   * The cloud made this job's images from uploaded copies of its library pictures, so their
   * metadata names the uploads (inp_…), which this computer cannot show. The local copy names the
   * pictures as this library knows them, so the thumbnails and Reuse settings find them here.
   */
  function withLocalPictures(metadata: ImageMetadata, request: GenerateRequest): ImageMetadata {
    const local = (ref: string | undefined) => ref !== undefined && LocalImageId.safeParse(ref).success;
    return {
      ...metadata,
      ...(metadata.init_image !== undefined && local(request.initImage) ? { init_image: request.initImage } : {}),
      ...(metadata.init_mask !== undefined && local(request.mask) ? { init_mask: request.mask } : {}),
    };
  }

  async function finishCloud(jobId: string, imageIds: string[]): Promise<void> {
    const ids: string[] = [];
    const { request } = get(jobId);
    // Gallery sync may have brought it down first, with the cloud's names for the pictures.
    const adopt = (existing: NonNullable<ReturnType<Library['getByCloudId']>>) => {
      if (existing.metadata && request.initImage !== undefined)
        library.setMetadata(existing.id, withLocalPictures(existing.metadata, request));
      ids.push(existing.id);
    };
    for (const cloudId of imageIds) {
      const existing = library.getByCloudId(cloudId);
      if (existing) {
        adopt(existing);
        continue;
      }
      const fetched = await cloud!.fetchImage(cloudId);
      const metadata = withLocalPictures(fetched.metadata, request);
      try {
        ids.push((await library.saveImage({ png: fetched.png, origin: 'cloud', cloudId, metadata, jobId })).id);
      } catch (e) {
        // ...or while we were fetching it (the pull writes a row as soon as its thumbnail is in):
        // cloud_id is unique, so that row is the image, and the job still succeeded.
        const raced = library.getByCloudId(cloudId);
        if (!raced) throw e;
        adopt(raced);
      }
    }
    patch(jobId, { state: 'succeeded', image_ids: JSON.stringify(ids), step: get(jobId).total });
    events.libraryChanged(ids);
  }

  const byGeneration = (genId: string) =>
    db.prepare("SELECT id FROM jobs WHERE cloud_generation_id = ? AND state = 'running'").get(genId) as
      { id: string } | undefined;

  /** Feeds a cloud event into the queue. */
  async function onCloudEvent(e: CloudEvent): Promise<void> {
    if (e.type === 'ready') return reconcileCloud();
    if (!('generationId' in e)) return;
    const j = byGeneration(e.generationId);
    if (!j) return;
    try {
      if (e.type === 'generation.progress') {
        patch(j.id, { step: e.step, total: e.total }, false);
        const job = get(j.id);
        events.progressed({
          jobId: j.id,
          step: e.step,
          total: e.total,
          elapsedMs: clock.now().getTime() - Date.parse(job.createdAt),
          ...(e.preview ? { preview: e.preview } : {}),
        });
      } else if (e.type === 'generation.succeeded') await finishCloud(j.id, e.imageIds);
      else if (e.type === 'generation.failed')
        patch(j.id, {
          state: 'failed',
          error: errorJson(e.errorCode, `The cloud generation failed (${e.errorCode}).`, false),
        });
      else if (e.type === 'generation.canceled') patch(j.id, { state: 'canceled' });
    } catch (err) {
      opts.onError?.(err, j.id);
    }
  }

  /** Polls running cloud jobs (after a restart or a reconnect, events may have been missed). */
  async function reconcileCloud(): Promise<void> {
    if (!cloud?.isOnline()) return;
    const rows = db
      .prepare(
        "SELECT id, cloud_generation_id FROM jobs WHERE state = 'running' AND target = 'cloud' AND cloud_generation_id IS NOT NULL",
      )
      .all() as { id: string; cloud_generation_id: string }[];
    for (const r of rows) {
      try {
        await applyGeneration(r.id, await cloud.getGeneration(r.cloud_generation_id));
      } catch (err) {
        if (!AppError.is(err, 'OFFLINE')) opts.onError?.(err, r.id);
      }
    }
  }

  /** Starts running what is queued and reconciles cloud jobs with the API. */
  function start(): void {
    pump();
    void reconcileCloud();
  }

  /** The cloud came back online: send what waited. */
  function online(): void {
    pump();
    void reconcileCloud();
  }

  async function close(): Promise<void> {
    closed = true;
    const interrupted = [...running.keys()];
    for (const ac of running.values()) ac.abort();
    await idle.catch(() => undefined);
    // A clean stop is not a crash: the interrupted local job starts again at the next start.
    for (const id of interrupted) {
      const r = row(id);
      if (r?.state === 'running' && r.target === 'local') patch(id, { state: 'queued', step: 0 }, false);
    }
  }

  return { submit, list, get, cancel, retry, reorder, start, online, onCloudEvent, close, pump };
}
