import { AppError, randomSeed, type ImageMetadata, type LocalJob, type RouteDecision } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { fieldErrorsOf, type FieldErrors } from '../lib/field-errors.ts';
import { defaultForm, formFromMetadata, formToRequest, lockSeed, type GenerateForm } from '../lib/generate-form.ts';
import { NATIVE_SIZE, SIZE_PRESETS } from '../lib/sizes.ts';
import type { StartStore } from './start.ts';

export interface GenerateState {
  form: GenerateForm;
  errors: FieldErrors;
  decision: RouteDecision | null;
  explainError: string | null;
  submitting: boolean;
  /** The last refusal worth a dedicated message (quota, sign-in), shown above the button. */
  blocker: AppError | null;
  lastSubmitted: LocalJob[];
  update(patch: Partial<GenerateForm>): void;
  /** Picks a size preset; 'native' takes the selected model's own size (passed in). */
  setSizePreset(id: string, native?: { width: number; height: number } | null): void;
  randomizeSeed(): void;
  /** Locks or unlocks the seed; locking an empty field takes the last run's seed (or picks one). */
  toggleSeedLock(lastRunSeed: number | null): void;
  reuse(meta: ImageMetadata): void;
  explain(): Promise<void>;
  submit(): Promise<LocalJob[] | null>;
  /** The one-click way out of a refusal shown before the click: run it on this computer / in the cloud. */
  runInstead(target: 'local' | 'cloud'): Promise<LocalJob[] | null>;
  /** Answers "may Automatic use metered cloud runs?" once; the answer is kept in Settings. */
  answerCloud(allow: boolean): Promise<void>;
}

const EXPLAIN_KEYS: (keyof GenerateForm)[] = ['target', 'model', 'count', 'width', 'height', 'sizePreset'];

const intIn = (s: string, min: number, max: number): number | undefined => {
  const n = Number(s);
  return s.trim() !== '' && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
};

export function createGenerateStore(
  api: Api,
  onError: (e: unknown) => void,
  onSettingsChanged?: () => void,
  /** The starting picture and mask (issue 15); absent, every run is text to image. */
  start?: StartStore,
) {
  let explainSeq = 0;
  return createStore<GenerateState>()((set, get) => ({
    form: defaultForm,
    errors: {},
    decision: null,
    explainError: null,
    submitting: false,
    blocker: null,
    lastSubmitted: [],
    update(patch) {
      const form = { ...get().form, ...patch };
      const errors = { ...get().errors };
      for (const k of Object.keys(patch)) delete errors[k];
      if ('width' in patch || 'height' in patch) delete errors._;
      set({ form, errors, blocker: null });
      if (EXPLAIN_KEYS.some((k) => k in patch)) void get().explain();
    },
    setSizePreset(id, native) {
      const preset = id === NATIVE_SIZE && native ? { ...native } : SIZE_PRESETS.find((p) => p.id === id);
      if (preset) get().update({ sizePreset: id, width: String(preset.width), height: String(preset.height) });
      else get().update({ sizePreset: 'custom' });
    },
    // A new random seed is locked at once: the field only shows numbers a run will use.
    randomizeSeed: () => get().update({ seed: String(randomSeed()), seedLocked: true }),
    toggleSeedLock(lastRunSeed) {
      const { form } = get();
      if (form.seedLocked) get().update({ seedLocked: false });
      else get().update({ seedLocked: true, seed: lockSeed(form, lastRunSeed) });
    },
    reuse(meta) {
      set({ form: formFromMetadata(meta, get().form), errors: {}, blocker: null });
      // The picture, mask and strength too; explain() runs again when the picture is back.
      void start?.getState().restore(meta);
      void get().explain();
    },
    async explain() {
      const seq = ++explainSeq;
      const { form } = get();
      const width = intIn(form.width, 64, 2048);
      const height = intIn(form.height, 64, 2048);
      try {
        const decision = await api.invoke('router:explain', {
          target: form.target,
          ...(form.model ? { model: form.model } : {}),
          count: intIn(form.count, 1, 16) ?? 1,
          ...(width !== undefined && height !== undefined ? { width, height } : {}),
          ...(start?.getState().picture ? { initImage: start.getState().picture!.id } : {}),
        });
        if (seq === explainSeq) set({ decision, explainError: null });
      } catch (e) {
        if (seq === explainSeq)
          set({ decision: null, explainError: e instanceof AppError ? e.userMessage : String(e) });
      }
    },
    async submit() {
      const { form, submitting, decision } = get();
      if (submitting) return null;
      // Refused before the click: the screen already says why and offers the way out.
      if (decision?.blocked) return null;
      const built = formToRequest(form);
      if (!built.ok) {
        set({ errors: built.errors });
        return null;
      }
      set({ submitting: true, errors: {}, blocker: null });
      try {
        // The painted mask is saved here, once: a refused mask (its size, its bytes) is said in
        // a toast and the form, picture and strokes all stay as they were.
        const fromPicture = start ? await start.getState().requestFields() : {};
        const r = await api.invoke('jobs:submit', { ...built.request, ...fromPicture });
        set({ decision: r.decision, lastSubmitted: r.jobs });
        void get().explain();
        return r.jobs;
      } catch (e) {
        const fields = fieldErrorsOf(e);
        if (fields) set({ errors: fields });
        else if (AppError.is(e, 'QUOTA_EXCEEDED') || AppError.is(e, 'AUTH_REQUIRED') || AppError.is(e, 'PLAN_REQUIRED'))
          set({ blocker: e });
        else onError(e);
        return null;
      } finally {
        set({ submitting: false });
      }
    },
    async runInstead(target) {
      get().update({ target });
      await get().explain();
      return get().submit();
    },
    async answerCloud(allow) {
      try {
        await api.invoke('settings:update', { autoCloud: allow ? 'allow' : 'never' });
        onSettingsChanged?.();
      } catch (e) {
        onError(e);
      }
      await get().explain();
    },
  }));
}
export type GenerateStore = ReturnType<typeof createGenerateStore>;
