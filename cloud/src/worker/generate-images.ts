/**
 * The worker's half of a generation: params → images in S3 → image rows. runGenerations
 * (queue/generation-runner.ts) wraps it with the generation's status, retries, refunds and events.
 *
 * Exactly one image per batch slot, however often a job is retried or its worker dies: a slot
 * already recorded (images.generation_id + batch_index is unique) is reused, not re-uploaded, and
 * a row is only written after both of its objects are in the bucket.
 */
import { AppError, newId } from '@atelier/common';
import type { ImageId, ResolvedGenerateRequest } from '@atelier/common';
import type { ModelCatalogue } from '../catalogue/catalogue.ts';
import type { Pool } from '../db/pool.ts';
import { withSystemTx } from '../db/tx.ts';
import { insertImages, recordedSlots } from '../db/gallery/images-repository.ts';
import type { NewImage } from '../db/gallery/images-repository.ts';
import { publishEvent } from '../events/publish.ts';
import { fetchRequestInput } from '../inputs/service.ts';
import type { GenerateContext } from '../queue/generation-runner.ts';
import type { GenerationRow } from '../generations/repository.ts';
import { imageObjectKey, isThumbMime, thumbObjectKey } from '../storage/keys.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { EngineImage, EngineInputs, EnginePool } from './engine-pool.ts';
import { createProgressWriter } from './progress.ts';

export interface ImageGeneratorDeps {
  /** The system pool (role atelier_system). */
  pool: Pool;
  store: ObjectStore;
  engines: EnginePool;
  catalogue: ModelCatalogue;
  /** Aborted when the worker is shutting down: running jobs stop and go back to the queue. */
  shutdown?: AbortSignal;
  /** How uploads are retried while storage is unavailable. */
  uploadRetry?: Partial<UploadRetry>;
  /** Unit: generations whose rendered images are kept (in memory) until they are delivered. */
  keepRendered?: number;
}

export interface UploadRetry {
  /** Tries per upload, the first included. */
  attempts: number;
  /** Unit: ms before the second try; doubles each time (with jitter), capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Waits; rejects when the signal aborts. Tests pass one that does not really sleep. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

const abortableSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** Retries `fn` while it throws STORAGE_UNAVAILABLE, backing off exponentially between tries. */
export async function withStorageRetry<T>(fn: () => Promise<T>, r: UploadRetry, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!AppError.is(e, 'STORAGE_UNAVAILABLE') || attempt >= r.attempts) throw e;
      const delay = Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** (attempt - 1));
      await r.sleep(Math.round(delay * (0.5 + Math.random() / 2)), signal);
    }
  }
}

export function createImageGenerator(deps: ImageGeneratorDeps) {
  const retry: UploadRetry = {
    attempts: 5,
    baseDelayMs: 500,
    maxDelayMs: 8_000,
    sleep: abortableSleep,
    ...deps.uploadRetry,
  };
  // Rendered but not yet delivered (storage was down): a retry of the job uploads these instead
  // of rendering the batch again. Bounded; the oldest entry goes first.
  // Each image keeps the id it was given, so every try writes the same keys (no orphans).
  const rendered = new Map<string, Array<{ img: EngineImage; id: ImageId }>>();
  const keep = deps.keepRendered ?? 4;
  const remember = (id: string, images: Array<{ img: EngineImage; id: ImageId }>) => {
    rendered.delete(id);
    rendered.set(id, images);
    while (rendered.size > keep) rendered.delete(rendered.keys().next().value!);
  };

  return async function generateImages(gen: GenerationRow, ctx: GenerateContext): Promise<{ imageIds: string[] }> {
    const params: ResolvedGenerateRequest = gen.params;
    const userId = gen.user_id;
    const model = deps.catalogue.get(params.model);
    if (!model)
      throw new AppError('MODEL_NOT_AVAILABLE', `model ${params.model} is no longer in this worker's catalogue`, {
        retryable: false,
      });

    const recorded = await recordedSlots(deps.pool, userId, gen.id);
    if (recorded.size >= params.count) return { imageIds: slotsInOrder(recorded, params.count) };

    async function render(): Promise<EngineImage[]> {
      // The starting image and mask the API checked at submit (issue 15), fetched before the
      // device is taken: a slow bucket must not hold the engine.
      const inputs: EngineInputs = {};
      for (const field of ['initImage', 'mask'] as const) {
        const ref = params[field];
        if (ref !== undefined)
          inputs[field] = await withStorageRetry(() => fetchRequestInput(deps, userId, field, ref), retry, ctx.signal);
      }
      const warm = await deps.engines.get(model!.id, model!.dir);
      // Progress is written and published strictly in order, one event per step (batched when the
      // database falls behind); a write that finds the generation canceled stops the engine.
      const stop = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stop.signal, ...(deps.shutdown ? [deps.shutdown] : [])]);
      const total = params.steps * params.count;
      const progress = createProgressWriter(deps.pool, gen.id, total, (e) => stop.abort(e));
      const result = await deps.engines
        .exclusive(() => {
          if (signal.aborted) throw new AppError('CANCELED', 'stopped before the engine was free');
          return warm.generate(params, {
            signal,
            ...(params.initImage !== undefined ? { inputs } : {}),
            onProgress: (p) => progress.push(Math.min(total, p.imageIndex * params.steps + p.step)),
          });
        })
        .catch(async (e: unknown) => {
          // The user canceled (a progress write found the generation no longer running): that stays CANCELED.
          await progress.flush();
          // Stopped for any other reason — the worker is shutting down or lost the job's lease — the
          // job is not finished: a retryable error sends it back to the queue instead of leaving it
          // "running" with nobody working on it.
          if (AppError.is(e, 'CANCELED') || signal.aborted)
            throw new AppError('SERVICE_UNAVAILABLE', 'the worker stopped before the generation finished', {
              retryable: true,
              cause: e,
            });
          throw e;
        });
      await progress.flush();
      return result.images;
    }

    const kept = rendered.get(gen.id);
    const images = kept ?? (await render()).map((img) => ({ img, id: newId('img') }));
    if (!kept) remember(gen.id, images);

    const fresh = images.filter(({ img }) => !recorded.has(img.index));
    const uploaded = await Promise.all(
      fresh.map(({ img, id }) =>
        withStorageRetry(() => upload(deps.store, userId, gen.id, img, id), retry, ctx.signal),
      ),
    );

    // Delivered only while the generation still runs, under its row lock: a cancel that commits
    // first refunds every undelivered image, so nothing it refunded can be delivered after it.
    const delivered = await withSystemTx(deps.pool, async (tx) => {
      const g = await tx.query<{ status: string }>('SELECT status FROM generations WHERE id = $1 FOR UPDATE', [gen.id]);
      if (g.rows[0]?.status !== 'running') return false;
      const ids = await insertImages(tx, userId, uploaded);
      uploaded.forEach((img, i) => recorded.set(img.batchIndex!, ids[i]!));
      await publishEvent(tx, userId, { type: 'gallery.changed', imageIds: ids.slice(0, 100) });
      return true;
    });
    if (!delivered) {
      await deps.store
        .delete(uploaded.flatMap((u) => [imageObjectKey(userId, u.id), thumbObjectKey(userId, u.id, u.thumbMime)]))
        .catch(() => undefined);
      rendered.delete(gen.id);
      throw new AppError('CANCELED', 'The generation was canceled before its images were delivered');
    }
    rendered.delete(gen.id);
    return { imageIds: slotsInOrder(recorded, params.count) };
  };
}

function slotsInOrder(recorded: Map<number, ImageId>, count: number): ImageId[] {
  const out: ImageId[] = [];
  for (let i = 0; i < count; i++) {
    const id = recorded.get(i);
    if (!id) throw new AppError('ENGINE_FAILED', `batch slot ${i} has no image`);
    out.push(id);
  }
  return out;
}

/** Puts the PNG and its thumbnail under the user's prefix; the row follows only once both are stored. */
async function upload(
  store: ObjectStore,
  userId: string,
  generationId: string,
  img: EngineImage,
  id: ImageId,
): Promise<NewImage> {
  const thumbMime = img.thumbnail.mime;
  if (!isThumbMime(thumbMime)) throw new AppError('ENGINE_FAILED', `unexpected thumbnail type ${thumbMime}`);
  await Promise.all([
    store.put(imageObjectKey(userId, id), img.png, { contentType: 'image/png', sha256: img.sha256 }),
    store.put(thumbObjectKey(userId, id, thumbMime), img.thumbnail.bytes, { contentType: thumbMime }),
  ]);
  return {
    id,
    generationId: generationId as NewImage['generationId'],
    batchIndex: img.index,
    width: img.width,
    height: img.height,
    metadata: img.metadata,
    size: img.png.byteLength,
    sha256: img.sha256,
    thumbMime,
  };
}
