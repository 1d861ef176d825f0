import type { ImageMetadata } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { defaultForm, formFromMetadata, formToRequest, lockSeed, seedFieldValue } from './generate-form.ts';
import { presetFor, snapDimension } from './sizes.ts';

describe('generate form', () => {
  it('builds a request; an unlocked seed is left to the engine, a locked one is sent', () => {
    const unlocked = formToRequest({ ...defaultForm, prompt: 'a cat', seed: '42' });
    expect(unlocked).toMatchObject({ ok: true, request: { prompt: 'a cat', width: 512, height: 512, steps: 30 } });
    expect(unlocked.ok && 'seed' in unlocked.request).toBe(false);
    const locked = formToRequest({ ...defaultForm, prompt: 'a cat', seed: '42', seedLocked: true, model: 'tiny-sd' });
    expect(locked).toMatchObject({ ok: true, request: { seed: 42, model: 'tiny-sd' } });
  });

  it('the seed field never shows a number that will not be used: "random" until locked', () => {
    expect(seedFieldValue(defaultForm)).toBe('');
    expect(seedFieldValue({ seed: '42', seedLocked: false })).toBe('');
    expect(seedFieldValue({ seed: '42', seedLocked: true })).toBe('42');
    // Locking keeps what was typed, else the last run's seed, else picks one that will be used.
    expect(lockSeed({ seed: '7' }, 99)).toBe('7');
    expect(lockSeed({ seed: '' }, 99)).toBe('99');
    expect(Number(lockSeed({ seed: '' }, null))).toBeGreaterThanOrEqual(0);
    const r = formToRequest({ ...defaultForm, prompt: 'a cat', seed: '', seedLocked: true });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.seed).toMatch(/Enter a seed, or unlock it/);
  });

  it('says what to type, not the schema’s words; an oversized seed is called too big, not "not whole"', () => {
    const r = formToRequest({
      ...defaultForm,
      prompt: 'a',
      steps: '',
      guidance: 'abc',
      seed: '99999999999999999999',
      seedLocked: true,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.steps).toBe('Enter the number of steps as a number.');
    expect(r.errors.guidance).toBe('Enter the guidance as a number.');
    expect(r.errors.seed).toMatch(/^The seed must be between 0 and \d+\.$/);
    expect(Object.values(r.errors).join(' ')).not.toMatch(/NaN|Invalid input/);
  });

  it('reports the contract’s messages inline, per field', () => {
    const r = formToRequest({ ...defaultForm, prompt: '  ', width: '500', steps: '', count: '17' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.prompt).toBe('prompt must not be empty');
    expect(r.errors.width).toBe('width must be a multiple of 8');
    expect(r.errors.steps).toBeDefined();
    expect(r.errors.count).toBe('count must be at most 16');
  });

  it('"reuse settings" reproduces an image with its seed locked', () => {
    const meta: ImageMetadata = {
      positive_prompt: 'a lighthouse',
      negative_prompt: 'blurry',
      seed: 1234,
      steps: 4,
      cfg_scale: 1.5,
      scheduler: 'lcm',
      width: 768,
      height: 512,
      model: { name: 'tiny-sd' },
      generation_mode: 'txt2img',
      app_version: '0.1.0',
    };
    const f = formFromMetadata(meta, { ...defaultForm, count: '4' });
    expect(f).toMatchObject({
      prompt: 'a lighthouse',
      negativePrompt: 'blurry',
      seed: '1234',
      seedLocked: true,
      steps: '4',
      guidance: '1.5',
      scheduler: 'lcm',
      sizePreset: '768x512',
      model: 'tiny-sd',
      count: '1',
    });
    const odd = formFromMetadata({ ...meta, scheduler: 'heun', model: { name: 'Some Model.ckpt' } }, defaultForm);
    expect(odd.scheduler).toBe(defaultForm.scheduler);
    expect(odd.model).toBe('');
  });

  it('size helpers', () => {
    expect(presetFor(512, 768)).toBe('512x768');
    expect(presetFor(640, 480)).toBe('custom');
    expect(snapDimension(515)).toBe(512);
    expect(snapDimension(5000)).toBe(2048);
    expect(snapDimension(Number.NaN)).toBe(512);
  });
});
