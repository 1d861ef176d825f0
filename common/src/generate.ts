import { z } from 'zod';
import { webCrypto } from './ids.ts';
import { isStorableText, storable } from './text.ts';

export const SCHEDULERS = ['euler', 'euler_a', 'ddim', 'lcm'] as const;
export const Scheduler = z.enum(SCHEDULERS);
export type Scheduler = z.infer<typeof Scheduler>;

export const RUN_TARGETS = ['auto', 'local', 'cloud'] as const;
export const RunTarget = z.enum(RUN_TARGETS);
export type RunTarget = z.infer<typeof RunTarget>;

export const MAX_SEED = 4294967295;

const dimension = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(64, `${name} must be at least 64`)
    .max(2048, `${name} must be at most 2048`)
    .refine((v) => v % 8 === 0, `${name} must be a multiple of 8`);

/** A model id as the engine's store and the cloud catalogue name them: lower-case slug. */
export const ModelId = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'model must be a lower-case id such as "sd-turbo"');

/** What a generation starts from: nothing (text to image), a picture, or a picture and a mask. */
export const GENERATION_MODES = ['txt2img', 'img2img', 'inpaint'] as const;
export type GenerationMode = (typeof GENERATION_MODES)[number];

/** The strength used when a request with a starting image leaves it out (InvokeAI's default). */
export const DEFAULT_STRENGTH = 0.75;

/**
 * How a starting image or mask is named: a gallery image id (`img_…`), an uploaded input's id, or
 * for the CLI the file's name. The engine receives the pixels beside the request; the name is what
 * the image's metadata records (`init_image`, `init_mask`) so Reuse settings can find it again.
 */
export const InputImageRef = z
  .string()
  .min(1, 'an image reference must not be empty')
  .max(255, 'an image reference must be at most 255 characters')
  .refine(
    (s) => ![...s].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127),
    'an image reference must not contain control characters',
  )
  .refine((s) => isStorableText(s), 'an image reference contains a broken character');

export const GenerateRequest = z
  .object({
    prompt: storable(
      z.string().trim().min(1, 'prompt must not be empty').max(2000, 'prompt must be at most 2000 characters'),
      'prompt',
    ),
    negativePrompt: storable(
      z.string().max(2000, 'negativePrompt must be at most 2000 characters'),
      'negativePrompt',
    ).default(''),
    width: dimension('width').default(512),
    height: dimension('height').default(512),
    steps: z
      .number()
      .int('steps must be a whole number')
      .min(1, 'steps must be at least 1')
      .max(150, 'steps must be at most 150')
      // 30, as InvokeAI: Euler ancestral (the default scheduler) still leaves shapes soft at 25
      // (the demo model drew 87.5 % of the held-out prompts right at 25 steps, 95 % at 30).
      .default(30),
    guidance: z.number().min(0, 'guidance must be at least 0').max(30, 'guidance must be at most 30').default(7.5),
    scheduler: Scheduler.default('euler_a'),
    /** Absent means random; the seed actually used is always reported back. */
    seed: z
      .number()
      .int('seed must be a whole number')
      .min(0, 'seed must be at least 0')
      .max(MAX_SEED, `seed must be at most ${MAX_SEED}`)
      .optional(),
    /** Absent means the default model. */
    model: ModelId.optional(),
    count: z
      .number()
      .int('count must be a whole number')
      .min(1, 'count must be at least 1')
      .max(16, 'count must be at most 16')
      .default(1),
    target: RunTarget.default('auto'),
    /** The starting image (image to image, inpainting); absent means text to image. */
    initImage: InputImageRef.optional(),
    /** White (opaque) pixels are repainted, black or transparent ones kept; needs `initImage`. */
    mask: InputImageRef.optional(),
    /**
     * How much of the schedule runs from the starting image, 0–1 (diffusers' `strength`): the last
     * ⌊steps × strength⌋ steps run from the encoded image noised to that step. 0 keeps the image,
     * 1 starts from pure noise. Needs `initImage`; absent means DEFAULT_STRENGTH.
     */
    strength: z
      .number({ error: 'strength must be a number' })
      .min(0, 'strength must be at least 0')
      .max(1, 'strength must be at most 1')
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.initImage !== undefined) return;
    if (r.mask !== undefined)
      ctx.addIssue({ code: 'custom', path: ['mask'], message: 'mask needs a starting image (initImage)' });
    if (r.strength !== undefined)
      ctx.addIssue({ code: 'custom', path: ['strength'], message: 'strength needs a starting image (initImage)' });
  });
export type GenerateRequest = z.output<typeof GenerateRequest>;
export type GenerateRequestInput = z.input<typeof GenerateRequest>;

/** A request with every choice made: what actually runs and is recorded. */
export const ResolvedGenerateRequest = GenerateRequest.safeExtend({
  seed: z.number().int().min(0).max(MAX_SEED),
  model: ModelId,
});
export type ResolvedGenerateRequest = z.output<typeof ResolvedGenerateRequest>;

/** What a request makes: text to image, image to image, or inpainting. */
export function generationModeOf(req: { initImage?: string | undefined; mask?: string | undefined }): GenerationMode {
  if (req.initImage === undefined) return 'txt2img';
  return req.mask === undefined ? 'img2img' : 'inpaint';
}

/**
 * UNet steps a request runs: all of them for text to image, else ⌊steps × strength⌋ as diffusers'
 * img2img does (`int(num_inference_steps * strength)`); the tiny epsilon keeps 0.6 × 10 at 6, not 5.
 */
export function denoisingSteps(req: {
  steps: number;
  initImage?: string | undefined;
  strength?: number | undefined;
}): number {
  if (req.initImage === undefined) return req.steps;
  const strength = req.strength ?? DEFAULT_STRENGTH;
  return Math.min(req.steps, Math.floor(req.steps * strength + 1e-9));
}

/** A uniformly random seed in [0, MAX_SEED]. */
export function randomSeed(): number {
  const buf = new Uint32Array(1);
  webCrypto.getRandomValues(buf);
  return buf[0]!;
}

/** The seed of image `index` of a batch: consecutive, wrapping at MAX_SEED. */
export function batchSeed(seed: number, index: number): number {
  return (seed + index) % (MAX_SEED + 1);
}
