import { AppError } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePng,
  type DiffusionModel,
  ENGINE_VERSION,
  encodePng,
  loadModel,
  type ProgressEvent,
  readPngMetadata,
} from '../src/index.ts';
import { buildFixtures, type Fixtures, request } from './support.ts';

let fx: Fixtures;
let sd: DiffusionModel;
let turbo: DiffusionModel;

beforeAll(async () => {
  fx = buildFixtures();
  sd = await loadModel({ modelDir: fx.sd });
  turbo = await loadModel({ modelDir: fx.turbo });
});
afterAll(async () => {
  await sd?.dispose();
  await turbo?.dispose();
  fx?.cleanup();
});

const pixels = (png: Uint8Array) => Buffer.from(decodePng(png).data).toString('base64');

describe('a loaded model', () => {
  it('reports its id, folder, content hash and provider', () => {
    expect(sd.id).toBe('atelier-fixture-sd');
    expect(sd.dir).toBe(fx.sd);
    expect(sd.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(turbo.hash).not.toBe(sd.hash);
    expect(sd.provider).toBe('cpu');
  });
});

describe('determinism', () => {
  it('gives byte-identical PNGs for the same request, again and after a fresh load', async () => {
    const a = await sd.generate(request());
    const b = await sd.generate(request());
    expect(b.images[0]!.sha256).toBe(a.images[0]!.sha256);
    expect(Buffer.from(b.images[0]!.png).equals(Buffer.from(a.images[0]!.png))).toBe(true);
    const fresh = await loadModel({ modelDir: fx.sd });
    try {
      expect(fresh.hash).toBe(sd.hash);
      expect((await fresh.generate(request())).images[0]!.sha256).toBe(a.images[0]!.sha256);
    } finally {
      await fresh.dispose();
    }
    const other = await sd.generate(request({ seed: 1235 }));
    expect(other.images[0]!.sha256).not.toBe(a.images[0]!.sha256);
  });

  it('makes a batch from consecutive seeds, each image equal to that seed generated alone', async () => {
    const batch = await sd.generate(request({ count: 3, seed: 4294967294 }));
    expect(batch.images.map((i) => i.seed)).toEqual([4294967294, 4294967295, 0]);
    expect(batch.images.map((i) => i.index)).toEqual([0, 1, 2]);
    expect(new Set(batch.images.map((i) => i.sha256)).size).toBe(3);
    const alone = await sd.generate(request({ seed: 4294967295 }));
    expect(alone.images[0]!.sha256).toBe(batch.images[1]!.sha256);
  });
});

describe('output', () => {
  it('has the requested size, a thumbnail and timings', async () => {
    const r = await sd.generate(request({ width: 320, height: 256, steps: 2 }));
    const img = r.images[0]!;
    expect([img.width, img.height]).toEqual([320, 256]);
    const png = decodePng(img.png);
    expect([png.width, png.height, png.channels]).toEqual([320, 256, 3]);
    expect(img.thumbnail.mime).toBe('image/png');
    expect([img.thumbnail.width, img.thumbnail.height]).toEqual([256, 205]);
    const thumb = decodePng(img.thumbnail.bytes);
    expect([thumb.width, thumb.height]).toEqual([256, 205]);
    expect(r.timings.steps).toBe(2);
    expect(r.timings.sessionRunMs).toBeGreaterThan(0);
    expect(r.timings.encodeMs).toBeGreaterThan(0);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.sessionRunMs + r.timings.encodeMs);
  });

  it('handles sizes whose latent is not a power of two (72×64 → 9×8 latent)', async () => {
    const r = await sd.generate(request({ width: 72, height: 64, steps: 1 }));
    expect([r.images[0]!.width, r.images[0]!.height]).toEqual([72, 64]);
  });

  it('keeps small images as their own thumbnail', async () => {
    const img = (await sd.generate(request({ steps: 1 }))).images[0]!;
    expect([img.thumbnail.width, img.thumbnail.height]).toEqual([64, 64]);
  });
});

describe('schedulers', () => {
  it('runs every scheduler, each giving a different image', async () => {
    const results = new Map<string, string>();
    for (const scheduler of ['euler', 'euler_a', 'ddim', 'lcm'] as const) {
      const r = await sd.generate(request({ scheduler, steps: 4 }));
      expect(r.timings.steps).toBe(4);
      results.set(scheduler, pixels(r.images[0]!.png));
    }
    expect(new Set(results.values()).size).toBe(4);
  });

  it('runs the Turbo fixture (v-prediction, float timestep, "!" padding) with LCM and Euler a at 1–4 steps', async () => {
    const seen = new Set<string>();
    for (const [scheduler, steps] of [
      ['lcm', 1],
      ['lcm', 4],
      ['euler_a', 1],
      ['euler', 2],
      ['ddim', 2],
    ] as const) {
      const req = request({ model: 'atelier-fixture-turbo', scheduler, steps, guidance: 0 });
      const a = await turbo.generate(req);
      expect((await turbo.generate(req)).images[0]!.sha256).toBe(a.images[0]!.sha256);
      expect(a.timings.unetBatch).toBe(1);
      seen.add(pixels(a.images[0]!.png));
    }
    expect(seen.size).toBe(5);
  });
});

describe('classifier-free guidance', () => {
  it('runs the UNet on a batch of 2 with guidance > 1 and skips the negative prompt at ≤ 1', async () => {
    const on = await sd.generate(request({ guidance: 7.5 }));
    expect(on.timings.unetBatch).toBe(2);
    const off = await sd.generate(request({ guidance: 1 }));
    expect(off.timings.unetBatch).toBe(1);
    const zero = await sd.generate(request({ guidance: 0, negativePrompt: 'something else entirely' }));
    expect(zero.timings.unetBatch).toBe(1);
    // Without guidance neither the scale nor the negative prompt can change the pixels.
    expect(pixels(zero.images[0]!.png)).toBe(pixels(off.images[0]!.png));
    expect(pixels(on.images[0]!.png)).not.toBe(pixels(off.images[0]!.png));
    const otherNegative = await sd.generate(request({ guidance: 7.5, negativePrompt: 'something else entirely' }));
    expect(pixels(otherNegative.images[0]!.png)).not.toBe(pixels(on.images[0]!.png));
  });

  it('conditions on the prompt', async () => {
    const a = await sd.generate(request({ prompt: 'a red apple' }));
    const b = await sd.generate(request({ prompt: 'a blue ocean' }));
    expect(pixels(a.images[0]!.png)).not.toBe(pixels(b.images[0]!.png));
  });
});

describe('progress and cancel', () => {
  it('reports every step of every image, with optional previews', async () => {
    const events: ProgressEvent[] = [];
    await sd.generate(request({ steps: 3, count: 2 }), { onProgress: (e) => events.push(e), preview: true });
    expect(events).toHaveLength(6);
    expect(events.map((e) => [e.imageIndex, e.step, e.total])).toEqual([
      [0, 1, 3],
      [0, 2, 3],
      [0, 3, 3],
      [1, 1, 3],
      [1, 2, 3],
      [1, 3, 3],
    ]);
    for (let i = 1; i < events.length; i++)
      expect(events[i]!.elapsedMs).toBeGreaterThanOrEqual(events[i - 1]!.elapsedMs);
    const preview = events[0]!.preview!;
    expect([preview.width, preview.height]).toEqual([8, 8]);
    expect(decodePng(preview.png).width).toBe(8);
    const plain: ProgressEvent[] = [];
    await sd.generate(request({ steps: 2 }), { onProgress: (e) => plain.push(e) });
    expect(plain.every((e) => e.preview === undefined)).toBe(true);
  });

  it('stops within one step when aborted and stays usable afterwards', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const run = sd.generate(request({ steps: 20, count: 2 }), {
      signal: controller.signal,
      onProgress: (e) => {
        steps.push(e.step);
        if (e.step === 2) controller.abort();
      },
    });
    await expect(run).rejects.toSatisfy((e) => AppError.is(e, 'CANCELED'));
    expect(steps).toEqual([1, 2]);
    await expect(sd.generate(request(), { signal: AbortSignal.abort() })).rejects.toSatisfy((e) =>
      AppError.is(e, 'CANCELED'),
    );
    expect((await sd.generate(request({ steps: 1 }))).images).toHaveLength(1);
  });

  it('disposes once, however often asked, and refuses work afterwards', async () => {
    const m = await loadModel({ modelDir: fx.sd, id: 'scratch' });
    const pending = m.generate(request({ steps: 2 }));
    await Promise.all([m.dispose(), m.dispose()]);
    expect((await pending).images).toHaveLength(1); // dispose waited for the running generation
    await m.dispose();
    await expect(m.generate(request())).rejects.toSatisfy((e) => AppError.is(e, 'ENGINE_FAILED'));
  });
});

describe('metadata', () => {
  it('round-trips through the PNG’s invokeai_metadata chunk, non-ASCII prompts included', async () => {
    const req = request({ prompt: 'café crème at 東京 — night', negativePrompt: 'ugly "quotes"', count: 2, seed: 77 });
    const r = await sd.generate(req, { appVersion: '9.9.9' });
    for (const img of r.images) {
      const meta = readPngMetadata(img.png);
      expect(meta).toEqual(img.metadata);
      expect(meta).toMatchObject({
        positive_prompt: req.prompt,
        negative_prompt: req.negativePrompt,
        seed: img.seed,
        steps: 4,
        cfg_scale: 7.5,
        scheduler: 'euler_a',
        width: 64,
        height: 64,
        model: { name: 'atelier-fixture-sd', hash: sd.hash },
        generation_mode: 'txt2img',
        app_version: '9.9.9',
        engine_version: ENGINE_VERSION,
        execution_provider: 'cpu',
      });
    }
    expect(r.images[1]!.metadata.seed).toBe(78);
  });

  it('returns null for files without valid metadata', () => {
    expect(readPngMetadata(new Uint8Array([1, 2, 3]))).toBeNull();
    const plain = { width: 1, height: 1, channels: 3 as const, data: new Uint8Array(3) };
    expect(readPngMetadata(encodePng(plain))).toBeNull();
    expect(readPngMetadata(encodePng(plain, { invokeai_metadata: '{"seed":"x"}' }))).toBeNull();
    expect(readPngMetadata(encodePng(plain, { invokeai_metadata: 'not json' }))).toBeNull();
  });
});
