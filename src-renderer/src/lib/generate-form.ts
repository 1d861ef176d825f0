import {
  GenerateRequest,
  MAX_SEED,
  ModelId,
  randomSeed,
  type GenerateRequestInput,
  type ImageMetadata,
  type RunTarget,
  type Scheduler,
  SCHEDULERS,
} from '@atelier/common';
import { fieldErrorsFromZod, type FieldErrors } from './field-errors.ts';
import { presetFor } from './sizes.ts';

/** What the Generate panel edits. Numbers are kept as typed text so half-typed values are not lost. */
export interface GenerateForm {
  prompt: string;
  negativePrompt: string;
  sizePreset: string;
  width: string;
  height: string;
  steps: string;
  guidance: string;
  scheduler: Scheduler;
  /** The locked seed as typed; ignored (and not shown: the field says "random") while unlocked. */
  seed: string;
  /** Locked: every run uses `seed`. Unlocked: every run gets a fresh random seed. */
  seedLocked: boolean;
  count: string;
  /** Empty means the default model. */
  model: string;
  target: RunTarget;
}

export const defaultForm: GenerateForm = {
  prompt: '',
  negativePrompt: '',
  sizePreset: '512x512',
  width: '512',
  height: '512',
  steps: '30',
  guidance: '7.5',
  scheduler: 'euler_a',
  seed: '',
  seedLocked: false,
  count: '1',
  model: '',
  target: 'auto',
};

const NUMBER_FIELDS = {
  width: 'the width',
  height: 'the height',
  steps: 'the number of steps',
  guidance: 'the guidance',
  count: 'the number of images',
  seed: 'the seed',
} as const;

const num = (s: string): number => (s.trim() === '' ? Number.NaN : Number(s));

/** The request this form describes, or the inline errors that stop it. */
export function formToRequest(
  form: GenerateForm,
): { ok: true; request: GenerateRequestInput } | { ok: false; errors: FieldErrors } {
  const request: GenerateRequestInput = {
    prompt: form.prompt,
    negativePrompt: form.negativePrompt,
    width: num(form.width),
    height: num(form.height),
    steps: num(form.steps),
    guidance: num(form.guidance),
    scheduler: form.scheduler,
    count: num(form.count),
    target: form.target,
  };
  if (form.seedLocked) request.seed = num(form.seed);
  if (form.model) request.model = form.model;
  const parsed = GenerateRequest.safeParse(request);
  const errors: FieldErrors = parsed.success ? {} : fieldErrorsFromZod(parsed.error);
  // Say what to type instead of the schema's words ("expected number, received NaN").
  for (const [field, what] of Object.entries(NUMBER_FIELDS) as [keyof typeof NUMBER_FIELDS, string][]) {
    if (field === 'seed' && !form.seedLocked) continue;
    const text = form[field].trim();
    if (text === '' || !Number.isFinite(Number(text))) errors[field] = `Enter ${what} as a number.`;
  }
  if (form.seedLocked && /^\d+$/.test(form.seed.trim()) && Number(form.seed.trim()) > MAX_SEED)
    errors.seed = `The seed must be between 0 and ${MAX_SEED}.`;
  if (form.seedLocked && form.seed.trim() === '')
    errors.seed = 'Enter a seed, or unlock it so each run picks a random one.';
  if (Object.keys(errors).length) return { ok: false, errors };
  return { ok: true, request };
}

/** "Reuse settings": the form that reproduces an image exactly (seed locked). */
export function formFromMetadata(meta: ImageMetadata, current: GenerateForm): GenerateForm {
  const scheduler = (SCHEDULERS as readonly string[]).includes(meta.scheduler)
    ? (meta.scheduler as Scheduler)
    : current.scheduler;
  return {
    ...current,
    prompt: meta.positive_prompt,
    negativePrompt: meta.negative_prompt,
    width: String(meta.width),
    height: String(meta.height),
    sizePreset: presetFor(meta.width, meta.height),
    steps: String(meta.steps),
    guidance: String(meta.cfg_scale),
    scheduler,
    seed: String(meta.seed),
    seedLocked: true,
    model: ModelId.safeParse(meta.model.name).success ? meta.model.name : current.model,
    count: '1',
  };
}

/**
 * What the seed field shows. Never a number that will not be used: "random" (an empty field showing
 * that word in grey) while unlocked, the locked seed otherwise.
 */
export function seedFieldValue(form: Pick<GenerateForm, 'seed' | 'seedLocked'>): string {
  return form.seedLocked ? form.seed : '';
}

/** Locking: keeps a typed seed, else takes the seed the last run used, else picks one now (it will be used). */
export function lockSeed(form: Pick<GenerateForm, 'seed'>, lastRunSeed: number | null): string {
  if (form.seed.trim() !== '') return form.seed;
  return String(lastRunSeed ?? randomSeed());
}

export function clampSeed(s: string): string {
  const n = Math.floor(Number(s));
  if (!Number.isFinite(n)) return s;
  return String(Math.max(0, Math.min(MAX_SEED, n)));
}
