/**
 * Image to image and inpainting on the fixture models: what runs (⌊steps × strength⌋ UNet steps
 * from the encoded start image), that it is deterministic, that every scheduler takes both paths,
 * that inpainting gives back every pixel outside the mask's feather byte for byte, the 9-channel
 * inpainting UNet's own path, and the stable errors for inputs the engine cannot use.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AppError, type ResolvedGenerateRequest, type Scheduler } from '@atelier/common';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, type DiffusionModel, encodePng, loadModel, readPngMetadata, type RawImage } from '../src/index.ts';
import { FIXTURES, buildUnet } from '../src/onnx-build/sd-fixture.ts';
import { featherRadius } from '../src/pipeline/input-image.ts';
import { buildFixtures, copyModel, type Fixtures, request } from './support.ts';

let fx: Fixtures;
let sd: DiffusionModel;
let turbo: DiffusionModel;
/** A 64×64 picture the SD fixture drew: the starting image of most tests. */
let start: Uint8Array;
let startPixels: RawImage;

beforeAll(async () => {
  fx = buildFixtures();
  sd = await loadModel({ modelDir: fx.sd });
  turbo = await loadModel({ modelDir: fx.turbo });
  start = (await sd.generate(request({ seed: 99, prompt: 'a harbour' }))).images[0]!.png;
  startPixels = decodePng(start);
}, 120_000);
afterAll(async () => {
  await sd?.dispose();
  await turbo?.dispose();
  fx?.cleanup();
});

/** A white rectangle [x0, x1) × [y0, y1) on black: the region to repaint. */
function rectMask(w: number, h: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const data = new Uint8Array(w * h * 3);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data.fill(255, (y * w + x) * 3, (y * w + x) * 3 + 3);
  return encodePng({ width: w, height: h, channels: 3, data });
}

/** Pixels farther than `r` (on either axis) from every pixel of [x0, x1) × [y0, y1). */
function outsideFeather(w: number, h: number, rect: [number, number, number, number], r: number): number[] {
  const [x0, y0, x1, y1] = rect;
  const out: number[] = [];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) if (x < x0 - r || x >= x1 + r || y < y0 - r || y >= y1 + r) out.push(y * w + x);
  return out;
}

function samePixels(a: RawImage, b: RawImage, pixels: number[]): number {
  let differing = 0;
  for (const p of pixels)
    for (let c = 0; c < 3; c++)
      if (a.data[p * a.channels + c] !== b.data[p * b.channels + c]) {
        differing++;
        break;
      }
  return differing;
}

const img2img = (over: Partial<ResolvedGenerateRequest> = {}) =>
  request({ prompt: 'a castle in the fog', initImage: 'img_start', strength: 0.5, steps: 8, ...over });

describe('image to image', () => {
  it('runs ⌊steps × strength⌋ UNet steps, records the mode, strength and start image, and is deterministic', async () => {
    const steps: number[] = [];
    const a = await sd.generate(img2img({ strength: 0.6, steps: 10 }), {
      inputs: { initImage: start },
      onProgress: (e) => steps.push(e.step * 100 + e.total),
    });
    expect(a.timings.steps).toBe(6);
    expect(steps).toEqual([106, 206, 306, 406, 506, 606]);
    const b = await sd.generate(img2img({ strength: 0.6, steps: 10 }), { inputs: { initImage: start } });
    expect(Buffer.from(b.images[0]!.png).equals(Buffer.from(a.images[0]!.png))).toBe(true);
    expect(readPngMetadata(a.images[0]!.png)).toMatchObject({
      generation_mode: 'img2img',
      strength: 0.6,
      init_image: 'img_start',
      steps: 10,
      positive_prompt: 'a castle in the fog',
    });
    expect(readPngMetadata(a.images[0]!.png)).not.toHaveProperty('init_mask');
    // Another seed draws other noise; the start image still shapes both.
    const c = await sd.generate(img2img({ strength: 0.6, steps: 10, seed: 5 }), { inputs: { initImage: start } });
    expect(c.images[0]!.sha256).not.toBe(a.images[0]!.sha256);
  });

  it('at strength 0 runs no UNet step: the start image through the VAE, nothing else', async () => {
    const r = await sd.generate(img2img({ strength: 0 }), { inputs: { initImage: start } });
    expect(r.timings.steps).toBe(0);
    expect(r.timings.unetMs).toBe(0);
    expect(decodePng(r.images[0]!.png)).toMatchObject({ width: 64, height: 64 });
  });

  it('works with every scheduler (LCM on the Turbo fixture), each deterministic', async () => {
    const runs: [DiffusionModel, Scheduler, Partial<ResolvedGenerateRequest>][] = [
      [sd, 'euler', {}],
      [sd, 'euler_a', {}],
      [sd, 'ddim', {}],
      [turbo, 'lcm', { model: 'atelier-fixture-turbo', guidance: 0, steps: 4, strength: 0.5 }],
      [turbo, 'euler_a', { model: 'atelier-fixture-turbo', guidance: 0, steps: 2, strength: 0.5 }],
    ];
    const seen = new Set<string>();
    for (const [model, scheduler, over] of runs) {
      const req = img2img({ scheduler, ...over });
      const a = await model.generate(req, { inputs: { initImage: start } });
      const b = await model.generate(req, { inputs: { initImage: start } });
      expect(a.images[0]!.sha256, scheduler).toBe(b.images[0]!.sha256);
      expect(a.timings.steps, scheduler).toBe(Math.floor(req.steps * req.strength!));
      seen.add(a.images[0]!.sha256);
    }
    expect(seen.size).toBe(runs.length);
  });

  it('resamples a start image of another size (and a JPEG) to the requested size', async () => {
    // 96×80 RGBA PNG and an 80×80 JPEG of the same picture, requested at 64×64.
    const big: RawImage = { width: 96, height: 80, channels: 4, data: new Uint8Array(96 * 80 * 4) };
    for (let y = 0; y < 80; y++) for (let x = 0; x < 96; x++) big.data.set([x * 2, y * 3, 128, 255], (y * 96 + x) * 4);
    const png = await sd.generate(img2img(), { inputs: { initImage: encodePng(big) } });
    expect(decodePng(png.images[0]!.png)).toMatchObject({ width: 64, height: 64 });
    const jpg = jpeg.encode({ width: 96, height: 80, data: big.data }, 90).data;
    const fromJpeg = await sd.generate(img2img(), { inputs: { initImage: new Uint8Array(jpg) } });
    expect(decodePng(fromJpeg.images[0]!.png)).toMatchObject({ width: 64, height: 64 });
    // Upscaling too: the 64×64 start image requested at 96×72.
    const up = await sd.generate(img2img({ width: 96, height: 72 }), { inputs: { initImage: start } });
    expect(decodePng(up.images[0]!.png)).toMatchObject({ width: 96, height: 72 });
  });
});

describe('inpainting with a standard UNet', () => {
  const rect: [number, number, number, number] = [16, 24, 40, 48];
  const mask = () => rectMask(64, 64, ...rect);
  const inpaint = (over: Partial<ResolvedGenerateRequest> = {}) =>
    img2img({ mask: 'mask_1', strength: 1, prompt: 'a red door', ...over });

  for (const [model, scheduler, over] of [
    ['sd', 'euler_a', {}],
    ['sd', 'euler', { strength: 0.7 }],
    ['sd', 'ddim', {}],
    ['turbo', 'lcm', { model: 'atelier-fixture-turbo', guidance: 0, steps: 4 }],
  ] as const)
    it(`${scheduler}: every pixel outside the mask's feather is the start image's, the masked region is repainted`, async () => {
      const m = model === 'sd' ? sd : turbo;
      const r = await m.generate(inpaint({ scheduler, ...over }), { inputs: { initImage: start, mask: mask() } });
      const out = decodePng(r.images[0]!.png);
      const keep = outsideFeather(64, 64, rect, featherRadius(64, 64));
      expect(keep.length).toBeGreaterThan(3000);
      expect(samePixels(out, startPixels, keep)).toBe(0);
      const inside: number[] = [];
      for (let y = rect[1] + 2; y < rect[3] - 2; y++)
        for (let x = rect[0] + 2; x < rect[2] - 2; x++) inside.push(y * 64 + x);
      expect(samePixels(out, startPixels, inside)).toBeGreaterThan(inside.length / 2);
      expect(readPngMetadata(r.images[0]!.png)).toMatchObject({
        generation_mode: 'inpaint',
        init_image: 'img_start',
        init_mask: 'mask_1',
      });
      const again = await m.generate(inpaint({ scheduler, ...over }), { inputs: { initImage: start, mask: mask() } });
      expect(again.images[0]!.sha256).toBe(r.images[0]!.sha256);
    });

  it('reads a mask as opaque strokes on a transparent layer too', async () => {
    const strokes: RawImage = { width: 64, height: 64, channels: 4, data: new Uint8Array(64 * 64 * 4) };
    for (let y = rect[1]; y < rect[3]; y++)
      for (let x = rect[0]; x < rect[2]; x++) strokes.data.set([255, 255, 255, 255], (y * 64 + x) * 4);
    const a = await sd.generate(inpaint(), { inputs: { initImage: start, mask: encodePng(strokes) } });
    const b = await sd.generate(inpaint(), { inputs: { initImage: start, mask: mask() } });
    expect(a.images[0]!.sha256).toBe(b.images[0]!.sha256);
  });

  it('an empty mask gives back the start image exactly', async () => {
    const r = await sd.generate(inpaint(), { inputs: { initImage: start, mask: rectMask(64, 64, 0, 0, 0, 0) } });
    expect(Buffer.from(decodePng(r.images[0]!.png).data).equals(Buffer.from(startPixels.data))).toBe(true);
  });
});

describe('the 9-channel inpainting UNet', () => {
  let inpaintModel: DiffusionModel;
  beforeAll(async () => {
    const dir = copyModel(fx.sd, fx.root, 'inpainting');
    const spec = FIXTURES[0]!;
    const unet = buildUnet(spec.seed + 2, spec.hidden, spec.timestepType, false, 1, 9);
    writeFileSync(path.join(dir, 'unet/model.onnx'), unet.model);
    writeFileSync(path.join(dir, 'unet/model.onnx_data'), unet.externalData!);
    inpaintModel = await loadModel({ modelDir: dir });
  });
  afterAll(async () => {
    await inpaintModel?.dispose();
  });

  it('inpaints through its own mask and masked-image channels, keeping every pixel outside the feather', async () => {
    const rect: [number, number, number, number] = [8, 8, 32, 40];
    const req = img2img({ mask: 'm', strength: 1, scheduler: 'ddim' });
    const r = await inpaintModel.generate(req, { inputs: { initImage: start, mask: rectMask(64, 64, ...rect) } });
    const out = decodePng(r.images[0]!.png);
    expect(samePixels(out, startPixels, outsideFeather(64, 64, rect, featherRadius(64, 64)))).toBe(0);
    // The UNet saw other inputs than the standard one would: the pictures differ.
    const standard = await sd.generate(req, { inputs: { initImage: start, mask: rectMask(64, 64, ...rect) } });
    expect(r.images[0]!.sha256).not.toBe(standard.images[0]!.sha256);
  });

  it('still draws from text alone (everything masked) and from a start image without a mask', async () => {
    const t = await inpaintModel.generate(request({ steps: 3 }));
    expect(t.images[0]!.metadata.generation_mode).toBe('txt2img');
    const i = await inpaintModel.generate(img2img({ steps: 4 }), { inputs: { initImage: start } });
    expect(i.timings.steps).toBe(2);
  });

  it('a UNet whose input channels fit neither layout is refused when loaded', async () => {
    const dir = copyModel(fx.sd, fx.root, 'seven-channels');
    const spec = FIXTURES[0]!;
    const unet = buildUnet(spec.seed + 2, spec.hidden, spec.timestepType, false, 1, 7);
    writeFileSync(path.join(dir, 'unet/model.onnx'), unet.model);
    writeFileSync(path.join(dir, 'unet/model.onnx_data'), unet.externalData!);
    const e = await loadModel({ modelDir: dir }).catch((x: unknown) => x);
    expect(AppError.is(e, 'ENGINE_MODEL_INVALID')).toBe(true);
    expect((e as AppError).message).toBe(
      "unet/model.onnx: input 'sample' has 7 channels but output 'out_sample' has 4 (expected 4, or 9 for an inpainting UNet)",
    );
  });
});

describe('inputs the engine cannot use', () => {
  const code = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(AppError);
    return (e as AppError).code;
  };

  it('a file that is neither PNG nor JPEG, a damaged PNG, a mask of another size', async () => {
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00');
    expect(await code(sd.generate(img2img(), { inputs: { initImage: gif } }))).toBe('INPUT_IMAGE_UNSUPPORTED_TYPE');
    expect(await code(sd.generate(img2img(), { inputs: { initImage: start.subarray(0, 60) } }))).toBe(
      'INPUT_IMAGE_UNREADABLE',
    );
    const bad = new Uint8Array(start);
    const idat = Buffer.from(bad).indexOf('IDAT');
    bad.fill(7, idat + 10, idat + 200); // the compressed pixels
    expect(await code(sd.generate(img2img(), { inputs: { initImage: bad } }))).toBe('INPUT_IMAGE_UNREADABLE');
    const e = await sd
      .generate(img2img({ mask: 'm' }), { inputs: { initImage: start, mask: rectMask(32, 64, 0, 0, 8, 8) } })
      .catch((x: unknown) => x as AppError);
    expect(e).toMatchObject({ code: 'INPUT_IMAGE_SIZE_MISMATCH' });
    expect((e as AppError).userMessage).toBe(
      "The mask is 32×64 pixels but the starting image is 64×64. Paint or save the mask at the image's size.",
    );
  });

  it('a request naming a start image or mask whose bytes are missing', async () => {
    expect(await code(sd.generate(img2img()))).toBe('VALIDATION_FAILED');
    expect(await code(sd.generate(img2img({ mask: 'm' }), { inputs: { initImage: start } }))).toBe('VALIDATION_FAILED');
  });

  it('a model without a VAE encoder says it cannot start from an image, and still draws from text', async () => {
    const dir = copyModel(fx.sd, fx.root, 'no-encoder');
    rmSync(path.join(dir, 'vae_encoder'), { recursive: true });
    const m = await loadModel({ modelDir: dir });
    try {
      expect(await code(m.generate(img2img(), { inputs: { initImage: start } }))).toBe(
        'ENGINE_IMAGE_INPUT_UNSUPPORTED',
      );
      expect((await m.generate(request({ steps: 2 }))).images).toHaveLength(1);
    } finally {
      await m.dispose();
    }
  });
});
