/**
 * Issue 11, storage outages on the worker: uploads back off instead of burning every try at once,
 * and images already rendered are kept, so a retry of the job uploads them instead of rendering
 * the batch again. The engine is a counting double (the port the worker renders through): what is
 * asserted is how often it is asked to render, and what ends up in the database and the store.
 */
import { createHash } from 'node:crypto';
import { AppError, type ResolvedGenerateRequest } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelCatalogue, DEFAULT_CATALOGUE } from '../src/catalogue/catalogue.ts';
import { markRunning, type GenerationRow } from '../src/generations/repository.ts';
import type { GenerateContext } from '../src/queue/generation-runner.ts';
import type { ObjectKey } from '../src/storage/keys.ts';
import type { ObjectStore } from '../src/storage/object-store.ts';
import { createEnginePool, type EngineImage } from '../src/worker/engine-pool.ts';
import { createImageGenerator, withStorageRetry } from '../src/worker/generate-images.ts';
import {
  auth,
  buildTestApp,
  createTestDatabase,
  createTestUser,
  type TestApp,
  type TestUser,
} from './support/index.ts';

let t: TestApp;
let alice: TestUser;

beforeAll(async () => {
  t = await buildTestApp({ db: await createTestDatabase() });
  alice = await createTestUser();
  expect((await t.app.inject({ url: '/v1/me', headers: auth(alice) })).statusCode).toBe(200);
});
afterAll(() => t.close());

/** A store that is down for the first `failures` puts, then keeps objects in memory. */
class FlakyStore {
  readonly bucket = 'flaky';
  readonly objects = new Map<string, Uint8Array>();
  puts = 0;
  failures: number;
  constructor(failures: number) {
    this.failures = failures;
  }
  async ensureBucket() {}
  async put(key: ObjectKey, body: Uint8Array) {
    this.puts++;
    if (this.failures > 0) {
      this.failures--;
      throw new AppError('STORAGE_UNAVAILABLE', 'S3 put failed: 503 SlowDown');
    }
    this.objects.set(key, body);
  }
  async get(key: ObjectKey) {
    return this.objects.get(key) ?? null;
  }
  async head() {
    return null;
  }
  async delete(keys: readonly ObjectKey[]) {
    for (const k of keys) this.objects.delete(k);
  }
  async presignGet() {
    return 'http://unused.invalid/';
  }
  async presignPut() {
    return 'http://unused.invalid/';
  }
  close() {}
}

function counter() {
  let renders = 0;
  const engines = createEnginePool(async () => ({
    async generate(req: ResolvedGenerateRequest) {
      renders++;
      const images: EngineImage[] = Array.from({ length: req.count }, (_, index) => {
        const png = new TextEncoder().encode(`png ${req.seed + index}`);
        return {
          index,
          seed: req.seed + index,
          width: req.width,
          height: req.height,
          png,
          thumbnail: { mime: 'image/webp', bytes: new Uint8Array([1, 2, 3]) },
          metadata: {
            positive_prompt: req.prompt,
            negative_prompt: req.negativePrompt,
            seed: req.seed + index,
            steps: req.steps,
            cfg_scale: req.guidance,
            scheduler: req.scheduler,
            width: req.width,
            height: req.height,
            model: { name: req.model },
            generation_mode: 'txt2img',
            app_version: '0.1.0',
          },
          sha256: createHash('sha256').update(png).digest('hex'),
        };
      });
      return { images };
    },
    dispose() {},
  }));
  return { engines, renders: () => renders };
}

async function runningGeneration(count: number): Promise<GenerationRow> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/generations',
    headers: auth(alice),
    payload: { prompt: 'storage weather', count, model: 'atelier-fixture-sd' },
  });
  expect(res.statusCode).toBe(202);
  return (await markRunning(t.systemPool, res.json().id, 1))!;
}

const ctx = (): GenerateContext => ({
  signal: new AbortController().signal,
  attempt: 1,
  progress: async () => {},
  heartbeat: async () => {},
});

const catalogue = createModelCatalogue(DEFAULT_CATALOGUE, { modelsRoot: '/nonexistent' });

describe('storage outage on the worker', () => {
  it('backs off between upload tries (growing delays) and succeeds once storage is back, rendering once', async () => {
    const store = new FlakyStore(3);
    const sleeps: number[] = [];
    const { engines, renders } = counter();
    const generate = createImageGenerator({
      pool: t.systemPool,
      store: store as unknown as ObjectStore,
      engines,
      catalogue,
      uploadRetry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 10_000, sleep: async (ms) => void sleeps.push(ms) },
    });
    const g = await runningGeneration(1);
    const { imageIds } = await generate(g, ctx());
    expect(imageIds).toHaveLength(1);
    expect(renders()).toBe(1);
    expect(sleeps.length).toBeGreaterThanOrEqual(2);
    // Exponential with jitter in [50 %, 100 %]: each wait's ceiling doubles.
    sleeps.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(100 * 2 ** i * 0.5);
      expect(ms).toBeLessThanOrEqual(100 * 2 ** i);
    });
    expect(store.objects.size).toBe(2); // PNG + thumbnail
  });

  it('when every try fails the attempt fails retryably, and the next attempt re-uploads the kept images without rendering', async () => {
    const store = new FlakyStore(1_000);
    const { engines, renders } = counter();
    const generate = createImageGenerator({
      pool: t.systemPool,
      store: store as unknown as ObjectStore,
      engines,
      catalogue,
      uploadRetry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} },
    });
    const g = await runningGeneration(2);
    const first = await generate(g, ctx()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(first).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
    expect(renders()).toBe(1);
    expect(store.puts).toBe(2 * 2 * 3); // 2 images × (PNG + thumbnail) × 3 tries

    store.failures = 0; // storage is back
    const { imageIds } = await generate(g, { ...ctx(), attempt: 2 });
    expect(imageIds).toHaveLength(2);
    expect(renders()).toBe(1);
    const rows = await t.adminPool.query('SELECT batch_index FROM images WHERE generation_id = $1 ORDER BY 1', [g.id]);
    expect(rows.rows).toEqual([{ batch_index: 0 }, { batch_index: 1 }]);
  });

  it('only storage outages are retried in place; other errors fail at once', async () => {
    let calls = 0;
    const boom = withStorageRetry(
      async () => {
        calls++;
        throw new AppError('ENGINE_FAILED', 'not a storage problem');
      },
      { attempts: 5, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} },
      new AbortController().signal,
    );
    await expect(boom).rejects.toMatchObject({ code: 'ENGINE_FAILED' });
    expect(calls).toBe(1);
  });
});
