import { describe, expect, it } from 'vitest';
import { AppError } from './errors.ts';
import { GenerateRequest, MAX_SEED, batchSeed, denoisingSteps, generationModeOf, randomSeed } from './generate.ts';
import { parseOrThrow } from './validation.ts';

describe('GenerateRequest', () => {
  it('fills sensible defaults around a prompt', () => {
    expect(GenerateRequest.parse({ prompt: 'a lighthouse at dusk' })).toEqual({
      prompt: 'a lighthouse at dusk',
      negativePrompt: '',
      width: 512,
      height: 512,
      steps: 30,
      guidance: 7.5,
      scheduler: 'euler_a',
      count: 1,
      target: 'auto',
    });
  });

  it('accepts the edges of every range', () => {
    const edge = {
      prompt: 'x'.repeat(2000),
      negativePrompt: 'n'.repeat(2000),
      width: 64,
      height: 2048,
      steps: 150,
      guidance: 30,
      scheduler: 'lcm',
      seed: MAX_SEED,
      model: 'sd-turbo',
      count: 16,
      target: 'cloud',
    };
    expect(GenerateRequest.parse(edge)).toEqual(edge);
    expect(GenerateRequest.parse({ ...edge, steps: 1, guidance: 0, seed: 0, count: 1 }).seed).toBe(0);
  });

  it('lists every bad field in one VALIDATION_FAILED error', () => {
    let caught: unknown;
    try {
      parseOrThrow(GenerateRequest, {
        prompt: '',
        width: 100,
        height: 4096,
        steps: 0,
        guidance: 31,
        scheduler: 'pndm',
        seed: -1,
        count: 17,
        target: 'gpu',
        extra: 1,
      });
    } catch (e) {
      caught = e;
    }
    expect(AppError.is(caught, 'VALIDATION_FAILED')).toBe(true);
    const fields = ((caught as AppError).details!['fields'] as { field: string }[]).map((f) => f.field).sort();
    expect(fields).toEqual(
      ['', 'count', 'guidance', 'height', 'prompt', 'scheduler', 'seed', 'steps', 'target', 'width'].sort(),
    );
    expect((caught as AppError).userMessage).toContain('width: width must be a multiple of 8');
  });

  it('rejects non-integer sizes, seeds above 2^32-1 and overlong prompts', () => {
    expect(GenerateRequest.safeParse({ prompt: 'a', width: 512.5 }).success).toBe(false);
    expect(GenerateRequest.safeParse({ prompt: 'a', seed: MAX_SEED + 1 }).success).toBe(false);
    expect(GenerateRequest.safeParse({ prompt: 'x'.repeat(2001) }).success).toBe(false);
    expect(GenerateRequest.safeParse({ prompt: '   ' }).success).toBe(false);
  });

  it('gives consecutive batch seeds that wrap at 2^32', () => {
    expect([0, 1, 2].map((i) => batchSeed(41, i))).toEqual([41, 42, 43]);
    expect(batchSeed(MAX_SEED, 1)).toBe(0);
    const s = randomSeed();
    expect(Number.isInteger(s) && s >= 0 && s <= MAX_SEED).toBe(true);
  });
});

describe('GenerateRequest: starting image, mask and strength', () => {
  it('accepts a starting image with or without a mask and strength, and names the mode', () => {
    const img = GenerateRequest.parse({ prompt: 'a fox', initImage: 'img_01J0000000AAAAAAAAAAAA', strength: 0.6 });
    expect(img).toMatchObject({ initImage: 'img_01J0000000AAAAAAAAAAAA', strength: 0.6 });
    expect(generationModeOf(img)).toBe('img2img');
    const inpaint = GenerateRequest.parse({ prompt: 'a fox', initImage: 'in.png', mask: 'mask.png' });
    expect(generationModeOf(inpaint)).toBe('inpaint');
    expect(generationModeOf(GenerateRequest.parse({ prompt: 'a fox' }))).toBe('txt2img');
  });

  it('refuses a mask or a strength without a starting image, and strengths outside 0–1, naming the field', () => {
    const issues = (input: Record<string, unknown>) => {
      const r = GenerateRequest.safeParse({ prompt: 'a fox', ...input });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ mask: 'm.png' })).toEqual(['mask: mask needs a starting image (initImage)']);
    expect(issues({ strength: 0.5 })).toEqual(['strength: strength needs a starting image (initImage)']);
    expect(issues({ initImage: 'a.png', strength: 1.5 })).toEqual(['strength: strength must be at most 1']);
    expect(issues({ initImage: 'a.png', strength: -0.1 })).toEqual(['strength: strength must be at least 0']);
    expect(issues({ initImage: '' })).toEqual(['initImage: an image reference must not be empty']);
    expect(issues({ initImage: 'a\nb.png' })).toEqual([
      'initImage: an image reference must not contain control characters',
    ]);
    expect(() => parseOrThrow(GenerateRequest, { prompt: 'x', mask: 'm.png' })).toThrow(AppError);
  });

  it('runs ⌊steps × strength⌋ UNet steps from a starting image, as diffusers does', () => {
    expect(denoisingSteps({ steps: 25 })).toBe(25);
    expect(denoisingSteps({ steps: 20, initImage: 'a', strength: 0.5 })).toBe(10);
    expect(denoisingSteps({ steps: 10, initImage: 'a', strength: 0.6 })).toBe(6);
    expect(denoisingSteps({ steps: 25, initImage: 'a', strength: 0.5 })).toBe(12);
    expect(denoisingSteps({ steps: 20, initImage: 'a' })).toBe(15); // DEFAULT_STRENGTH 0.75
    expect(denoisingSteps({ steps: 4, initImage: 'a', strength: 0 })).toBe(0);
    expect(denoisingSteps({ steps: 4, initImage: 'a', strength: 1 })).toBe(4);
  });
});
