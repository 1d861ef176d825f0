import { AppError, randomSeed, type ImageMetadata, type LocalJob, type RouteDecision } from '@atelier/common';
import { createStore } from 'zustand/vanilla';
import type { Api } from '../bridge.ts';
import { fieldErrorsOf, type FieldErrors } from '../lib/field-errors.ts';
import { defaultForm, formFromMetadata, formToRequest, type GenerateForm } from '../lib/generate-form.ts';
import { SIZE_PRESETS } from '../lib/sizes.ts';

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
  setSizePreset(id: string): void;
  randomizeSeed(): void;
  reuse(meta: ImageMetadata): void;
  explain(): Promise<void>;
  submit(): Promise<LocalJob[] | null>;
}

const EXPLAIN_KEYS: (keyof GenerateForm)[] = ['target', 'model', 'count'];

export function createGenerateStore(api: Api, onError: (e: unknown) => void) {
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
    setSizePreset(id) {
      const preset = SIZE_PRESETS.find((p) => p.id === id);
      if (preset) get().update({ sizePreset: id, width: String(preset.width), height: String(preset.height) });
      else get().update({ sizePreset: 'custom' });
    },
    randomizeSeed: () => get().update({ seed: String(randomSeed()) }),
    reuse(meta) {
      set({ form: formFromMetadata(meta, get().form), errors: {}, blocker: null });
      void get().explain();
    },
    async explain() {
      const seq = ++explainSeq;
      const { form } = get();
      const count = Number(form.count);
      try {
        const decision = await api.invoke('router:explain', {
          target: form.target,
          ...(form.model ? { model: form.model } : {}),
          count: Number.isInteger(count) && count >= 1 && count <= 16 ? count : 1,
        });
        if (seq === explainSeq) set({ decision, explainError: null });
      } catch (e) {
        if (seq === explainSeq)
          set({ decision: null, explainError: e instanceof AppError ? e.userMessage : String(e) });
      }
    },
    async submit() {
      const { form, submitting } = get();
      if (submitting) return null;
      const built = formToRequest(form);
      if (!built.ok) {
        set({ errors: built.errors });
        return null;
      }
      set({ submitting: true, errors: {}, blocker: null });
      try {
        const r = await api.invoke('jobs:submit', built.request);
        set({ decision: r.decision, lastSubmitted: r.jobs });
        // An unlocked seed means "surprise me" every time: show the next one.
        if (!form.seedLocked) set({ form: { ...get().form, seed: String(randomSeed()) } });
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
  }));
}
export type GenerateStore = ReturnType<typeof createGenerateStore>;
