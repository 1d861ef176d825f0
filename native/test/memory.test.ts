import { AppError } from '@atelier/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, type DiffusionModel, loadModel, type ProgressEvent } from '../src/index.ts';
import { decodeBytes, estimateJob, type MemoryProfile } from '../src/pipeline/memory.ts';
import { decodeTiled, tileStarts } from '../src/pipeline/vae-tiling.ts';
import { buildFixtures, type Fixtures, request } from './support.ts';

let fx: Fixtures;
let sd: DiffusionModel;

beforeAll(async () => {
  fx = buildFixtures();
  sd = await loadModel({ modelDir: fx.sd });
});
afterAll(async () => {
  await sd?.dispose();
  fx?.cleanup();
});

const GB = 1e9;

describe('tile layout', () => {
  it('covers the latent with full tiles that overlap by at least the overlap', () => {
    expect(tileStarts(32, 64, 16)).toEqual([0]);
    expect(tileStarts(256, 64, 16)).toEqual([0, 48, 96, 144, 192]);
    const starts = tileStarts(100, 64, 16);
    expect(starts).toEqual([0, 36]);
    for (let i = 1; i < starts.length; i++) expect(starts[i - 1]! + 64 - starts[i]!).toBeGreaterThanOrEqual(16);
  });

  it('blends overlapping tiles back into the exact input when the decoder is a pure upscale', async () => {
    // A "decoder" that repeats each latent pixel 2×2 has no context, so blending must reproduce it exactly.
    const lh = 20;
    const lw = 13;
    const latents = Float32Array.from({ length: lh * lw }, (_, i) => Math.sin(i));
    const out = await decodeTiled(latents, 1, lh, lw, { size: 8, overlap: 2 }, async (t, th, tw) => {
      const data = new Float32Array(4 * th * tw);
      for (let y = 0; y < 2 * th; y++)
        for (let x = 0; x < 2 * tw; x++) data[y * 2 * tw + x] = t[(y >> 1) * tw + (x >> 1)]!;
      return { data, channels: 1, height: 2 * th, width: 2 * tw };
    });
    expect([out.height, out.width]).toEqual([40, 26]);
    for (let y = 0; y < 40; y++)
      for (let x = 0; x < 26; x++) expect(out.data[y * 26 + x]).toBeCloseTo(latents[(y >> 1) * lw + (x >> 1)]!, 5);
  });
});

describe('memory estimate', () => {
  const sd15: MemoryProfile = {
    weightsBytes: 4.3 * GB,
    unetChannels: 320,
    unetHeads: 8,
    vaeChannels: [128, 256, 512, 512],
    elementBytes: 4,
  };

  it('puts a whole-latent 2048² SD decode far beyond a 24 GB machine and a 512² tile well within it', () => {
    expect(decodeBytes(sd15, 256, 256)).toBeGreaterThan(24 * GB);
    expect(decodeBytes(sd15, 64, 64)).toBeLessThan(1 * GB);
  });

  it('decodes 512² whole, larger images in tiles, and says when nothing fits', () => {
    const at = (size: number, availableBytes: number, p = sd15) =>
      estimateJob(p, { width: size, height: size, guidance: 7.5, count: 1 }, { availableBytes, loaded: true });
    expect(at(512, 16 * GB)).toMatchObject({ tile: null, tiles: 1, fits: true });
    const big = at(768, 24 * GB);
    expect(big).toMatchObject({ tile: { size: 64, overlap: 16 }, tiles: 4, fits: true });
    // SD 1.5's UNet self-attention at 2048² (two 137 GB score matrices) is beyond any tile's help: refused.
    expect(at(2048, 24 * GB).fits).toBe(false);
    expect(at(512, 0.5 * GB).fits).toBe(false);
    // A UNet without full-resolution self-attention: 2048² fits in 512² tiles.
    const crossOnly = at(2048, 24 * GB, { ...sd15, unetHeads: 0 });
    expect(crossOnly).toMatchObject({ tile: { size: 64, overlap: 16 }, tiles: 25, fits: true });
  });
});

describe('a job over the memory cap', () => {
  it('is refused before any step runs, with a stable code, sizes and a way out', async () => {
    const steps: ProgressEvent[] = [];
    const err = await sd
      .generate(request({ width: 1024, height: 1024 }), { memoryLimitBytes: 1e6, onProgress: (e) => steps.push(e) })
      .catch((e: unknown) => e);
    expect(AppError.is(err, 'ENGINE_MEMORY_INSUFFICIENT')).toBe(true);
    const e = err as AppError;
    expect(e.userMessage).toMatch(/1024×1024 image needs about .* of memory and this computer has 1 MB free/);
    expect(e.userMessage).toMatch(/smaller size|cloud/);
    expect(steps).toHaveLength(0);
    // The model is still usable.
    expect((await sd.generate(request())).images).toHaveLength(1);
  });

  it('is decoded in tiles when whole decoding would exceed the cap, and the image is complete', async () => {
    const req = request({ width: 768, height: 768, steps: 1 });
    const whole = estimateJob(sd.memory, req, {
      availableBytes: Number.MAX_SAFE_INTEGER,
      loaded: true,
      tile: { size: 96, overlap: 0 },
    });
    expect(whole.tile).toBeNull();
    const tiled = estimateJob(sd.memory, req, {
      availableBytes: Number.MAX_SAFE_INTEGER,
      loaded: true,
      tile: { size: 64, overlap: 16 },
    });
    // A cap between the tiled and the whole-latent estimate: only tiling fits.
    const cap = Math.floor((tiled.requiredBytes + whole.requiredBytes) / 2);
    expect(tiled.requiredBytes).toBeLessThan(whole.requiredBytes);
    const tiles: number[] = [];
    const r = await sd.generate(req, {
      memoryLimitBytes: cap,
      onProgress: (e) => e.decode && tiles.push(e.decode.tile),
    });
    expect(r.timings.vaeTiles).toBe(4);
    expect(r.memory.tile).toEqual({ size: 64, overlap: 16 });
    expect(tiles).toEqual([1, 2, 3, 4]);
    const img = decodePng(r.images[0]!.png);
    expect([img.width, img.height]).toEqual([768, 768]);
  });
});

describe('tiled decode', () => {
  it('matches the whole-latent decode closely on a small image', async () => {
    const req = request({ width: 256, height: 256, steps: 2 });
    const whole = await sd.generate(req);
    const tiled = await sd.generate(req, { vaeTile: { size: 20, overlap: 8 } });
    expect(whole.timings.vaeTiles).toBe(1);
    expect(tiled.timings.vaeTiles).toBe(4);
    const a = decodePng(whole.images[0]!.png).data;
    const b = decodePng(tiled.images[0]!.png).data;
    let sum = 0;
    let max = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    const mean = sum / a.length;
    console.log(`tiled vs whole: mean |Δ| ${mean.toFixed(3)}, max ${max} (8-bit levels)`);
    expect(mean).toBeLessThan(3);
    expect(whole.images[0]!.sha256).not.toBe(tiled.images[0]!.sha256);
  });

  it('cancels between tiles: an abort during the decode ends the job with CANCELED', async () => {
    const ac = new AbortController();
    const decoded: number[] = [];
    const err = await sd
      .generate(request({ width: 256, height: 256, steps: 1 }), {
        vaeTile: { size: 16, overlap: 4 },
        signal: ac.signal,
        onProgress: (e) => {
          if (e.decode) {
            decoded.push(e.decode.tile);
            ac.abort();
          }
        },
      })
      .catch((e: unknown) => e);
    expect(AppError.is(err, 'CANCELED')).toBe(true);
    expect(decoded).toEqual([1]);
  });
});
