import type { ImageMetadata } from '@atelier/common';

/** Metadata of a small fixture-model picture, as the worker records it; tests vary the prompt and seed. */
export function fixtureMetadata(prompt: string, over: Partial<ImageMetadata> = {}): ImageMetadata {
  return {
    positive_prompt: prompt,
    negative_prompt: '',
    seed: 1,
    steps: 4,
    cfg_scale: 7.5,
    scheduler: 'euler_a',
    width: 64,
    height: 64,
    model: { name: 'atelier-fixture-sd' },
    generation_mode: 'txt2img',
    app_version: '0.1.0',
    ...over,
  };
}
