import { MAX_SEED, SCHEDULERS, type AppError, type Scheduler } from '@atelier/common';
import { useEffect, useId, useMemo, type ReactNode } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { JobCard } from '../components/JobCard.tsx';
import { SIZE_PRESETS } from '../lib/sizes.ts';
import { isActive, orderedJobs } from '../stores/jobs.ts';
import { useS, useStores } from '../stores/index.ts';
import { Icon } from '../components/Icon.tsx';

export const SCHEDULER_LABELS: Record<Scheduler, string> = {
  euler: 'Euler',
  euler_a: 'Euler ancestral',
  ddim: 'DDIM',
  lcm: 'LCM / Turbo (1–4 steps)',
};

function Field({
  label,
  error,
  hint,
  children,
  id,
}: {
  label: string;
  error: string | undefined;
  hint?: ReactNode;
  id: string;
  children: ReactNode;
}) {
  return (
    <div className={`field ${error ? 'field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && !error && (
        <div className="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {error && (
        <div className="error-text" id={`${id}-error`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

const describedBy = (id: string, error: string | undefined) => (error ? `${id}-error` : `${id}-hint`);

function Blocker({ error }: { error: AppError }) {
  const { account, app } = useStores();
  const upgrade = async () => {
    try {
      await account.getState().upgrade();
      app
        .getState()
        .toast({ kind: 'info', message: 'Checkout opened in your browser. Come back here when you are done.' });
    } catch (e) {
      app.getState().reportError(e);
    }
  };
  return (
    <div className="callout callout-warning" role="alert">
      <p>
        <strong>{error.code === 'QUOTA_EXCEEDED' ? 'Cloud quota reached. ' : ''}</strong>
        {error.userMessage}
      </p>
      <div className="row">
        {(error.code === 'QUOTA_EXCEEDED' || error.code === 'PLAN_REQUIRED') && (
          <button type="button" className="btn btn-primary" onClick={() => void upgrade()}>
            Upgrade
          </button>
        )}
        {error.code === 'AUTH_REQUIRED' && (
          <button type="button" className="btn btn-primary" onClick={() => app.getState().navigate('account')}>
            Sign in
          </button>
        )}
      </div>
    </div>
  );
}

export function GenerateScreen() {
  const { generate, jobs, settings, account } = useStores();
  const form = useS(generate, (s) => s.form);
  const errors = useS(generate, (s) => s.errors);
  const decision = useS(generate, (s) => s.decision);
  const explainError = useS(generate, (s) => s.explainError);
  const submitting = useS(generate, (s) => s.submitting);
  const blocker = useS(generate, (s) => s.blocker);
  const models = useS(settings, (s) => s.models);
  const defaultModelId = useS(settings, (s) => s.settings?.defaultModel ?? null);
  const defaultModelName = (models.find((m) => m.id === defaultModelId) ?? models.find((m) => m.isDefault))?.name;
  const accountState = useS(account, (s) => s.state);
  const jobMap = useS(jobs, (s) => s.jobs);
  const recent = useMemo(
    () =>
      orderedJobs(jobMap)
        .filter((j) => isActive(j))
        .concat(
          orderedJobs(jobMap)
            .filter((j) => !isActive(j))
            .slice(0, 4),
        ),
    [jobMap],
  );
  const { update } = useS(
    generate,
    useShallow((s) => ({ update: s.update })),
  );
  const uid = useId();
  const id = (name: string) => `${uid}-${name}`;

  useEffect(() => {
    void generate.getState().explain();
  }, [generate, accountState?.signedIn, accountState?.usage?.used, accountState?.plan]);

  const submit = () => void generate.getState().submit();
  const willRunInCloud = decision?.target === 'cloud';

  return (
    <div className="generate-layout">
      <form
        className="panel generate-form"
        aria-label="Generate"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
        onKeyDown={(e) => {
          if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
            e.preventDefault();
            submit();
          }
        }}
        noValidate
      >
        <h1 className="screen-title">Generate</h1>
        <Field
          label="Prompt"
          id={id('prompt')}
          error={errors.prompt}
          hint="Describe the image. Ctrl+Enter (⌘+Enter) generates."
        >
          <textarea
            id={id('prompt')}
            rows={4}
            value={form.prompt}
            aria-invalid={!!errors.prompt}
            aria-describedby={describedBy(id('prompt'), errors.prompt)}
            onChange={(e) => update({ prompt: e.target.value })}
            placeholder="a lighthouse on a cliff at dusk, oil painting"
            autoFocus
          />
        </Field>
        <Field
          label="Avoid"
          id={id('neg')}
          error={errors.negativePrompt}
          hint="Negative prompt: what to keep out of the image."
        >
          <textarea
            id={id('neg')}
            rows={2}
            value={form.negativePrompt}
            aria-invalid={!!errors.negativePrompt}
            aria-describedby={describedBy(id('neg'), errors.negativePrompt)}
            onChange={(e) => update({ negativePrompt: e.target.value })}
          />
        </Field>

        <div className="grid-2">
          <Field label="Size" id={id('size')} error={undefined}>
            <select
              id={id('size')}
              value={form.sizePreset}
              onChange={(e) => generate.getState().setSizePreset(e.target.value)}
            >
              {SIZE_PRESETS.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.label}
                </option>
              ))}
              <option value="custom">Custom…</option>
            </select>
          </Field>
          <Field
            label="Model"
            id={id('model')}
            error={errors.model}
            hint={
              form.target === 'cloud' && form.model
                ? 'Cloud runs need a model your plan includes; “Default model” always works.'
                : undefined
            }
          >
            <select
              id={id('model')}
              value={form.model}
              aria-invalid={!!errors.model}
              aria-describedby={describedBy(id('model'), errors.model)}
              onChange={(e) => update({ model: e.target.value })}
            >
              <option value="">{defaultModelName ? `Default model (${defaultModelName})` : 'Default model'}</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
          </Field>
        </div>
        {form.sizePreset === 'custom' && (
          <div className="grid-2">
            <Field label="Width" id={id('w')} error={errors.width} hint="64–2048, a multiple of 8">
              <input
                id={id('w')}
                type="number"
                inputMode="numeric"
                step={8}
                min={64}
                max={2048}
                value={form.width}
                aria-invalid={!!errors.width}
                aria-describedby={describedBy(id('w'), errors.width)}
                onChange={(e) => update({ width: e.target.value })}
              />
            </Field>
            <Field label="Height" id={id('h')} error={errors.height} hint="64–2048, a multiple of 8">
              <input
                id={id('h')}
                type="number"
                inputMode="numeric"
                step={8}
                min={64}
                max={2048}
                value={form.height}
                aria-invalid={!!errors.height}
                aria-describedby={describedBy(id('h'), errors.height)}
                onChange={(e) => update({ height: e.target.value })}
              />
            </Field>
          </div>
        )}
        {form.sizePreset !== 'custom' && (errors.width || errors.height) && (
          <p className="error-text" role="alert">
            {errors.width ?? errors.height}
          </p>
        )}

        <div className="grid-3">
          <Field label="Steps" id={id('steps')} error={errors.steps}>
            <input
              id={id('steps')}
              type="number"
              min={1}
              max={150}
              value={form.steps}
              aria-invalid={!!errors.steps}
              aria-describedby={describedBy(id('steps'), errors.steps)}
              onChange={(e) => update({ steps: e.target.value })}
            />
          </Field>
          <Field label="Guidance" id={id('cfg')} error={errors.guidance}>
            <input
              id={id('cfg')}
              type="number"
              min={0}
              max={30}
              step={0.5}
              value={form.guidance}
              aria-invalid={!!errors.guidance}
              aria-describedby={describedBy(id('cfg'), errors.guidance)}
              onChange={(e) => update({ guidance: e.target.value })}
            />
          </Field>
          <Field label="Images" id={id('count')} error={errors.count}>
            <input
              id={id('count')}
              type="number"
              min={1}
              max={16}
              value={form.count}
              aria-invalid={!!errors.count}
              aria-describedby={describedBy(id('count'), errors.count)}
              onChange={(e) => update({ count: e.target.value })}
            />
          </Field>
        </div>

        <div className="grid-2">
          <Field label="Scheduler" id={id('sched')} error={errors.scheduler}>
            <select
              id={id('sched')}
              value={form.scheduler}
              onChange={(e) => update({ scheduler: e.target.value as Scheduler })}
            >
              {SCHEDULERS.map((s) => (
                <option key={s} value={s}>
                  {SCHEDULER_LABELS[s]}
                </option>
              ))}
            </select>
          </Field>
          <Field
            label="Seed"
            id={id('seed')}
            error={errors.seed}
            hint={form.seedLocked ? 'Locked: every run uses this seed.' : 'Unlocked: each run picks a new seed.'}
          >
            <div className="row">
              <input
                id={id('seed')}
                type="number"
                min={0}
                max={MAX_SEED}
                value={form.seed}
                aria-invalid={!!errors.seed}
                aria-describedby={describedBy(id('seed'), errors.seed)}
                onChange={(e) => update({ seed: e.target.value, seedLocked: true })}
                className="grow"
              />
              <button
                type="button"
                className={`btn btn-icon ${form.seedLocked ? 'btn-pressed' : ''}`}
                aria-pressed={form.seedLocked}
                aria-label="Lock seed"
                title={form.seedLocked ? 'Unlock seed' : 'Lock seed'}
                onClick={() => update({ seedLocked: !form.seedLocked })}
              >
                <Icon name={form.seedLocked ? 'lock' : 'unlock'} />
              </button>
              <button
                type="button"
                className="btn btn-icon"
                aria-label="Random seed"
                title="Random seed"
                onClick={() => generate.getState().randomizeSeed()}
              >
                <Icon name="dice" />
              </button>
            </div>
          </Field>
        </div>

        <fieldset className="field run-target">
          <legend>Where to run</legend>
          <div className="segmented" role="radiogroup" aria-label="Where to run">
            {(['auto', 'local', 'cloud'] as const).map((t) => (
              <label key={t} className={`segment ${form.target === t ? 'segment-on' : ''}`}>
                <input
                  type="radio"
                  name={id('target')}
                  value={t}
                  checked={form.target === t}
                  onChange={() => update({ target: t })}
                />
                {t === 'auto' ? 'Automatic' : t === 'local' ? 'This computer' : 'Atelier Cloud'}
              </label>
            ))}
          </div>
          <div className="route" aria-live="polite" data-testid="route-reason">
            {decision && (
              <>
                <p>
                  <span className={`badge badge-${decision.target}`}>
                    {decision.target === 'cloud' ? 'Cloud' : 'Local'}
                  </span>{' '}
                  {decision.reason}
                </p>
                {decision.warning && <p className="warning-text">{decision.warning}</p>}
                {willRunInCloud && decision.cost && (
                  <p className="cost" data-testid="cloud-cost">
                    This {decision.cost}.
                  </p>
                )}
              </>
            )}
            {explainError && <p className="error-text">{explainError}</p>}
          </div>
        </fieldset>

        {errors._ && (
          <p className="error-text" role="alert">
            {errors._}
          </p>
        )}
        {blocker && <Blocker error={blocker} />}

        <div className="form-actions">
          <button
            type="submit"
            className="btn btn-primary btn-large"
            disabled={submitting}
            aria-busy={submitting}
            aria-keyshortcuts="Control+Enter Meta+Enter"
          >
            Generate
          </button>
        </div>
      </form>

      <section className="panel generate-side" aria-labelledby={id('recent')}>
        <h2 id={id('recent')}>Progress</h2>
        {recent.length === 0 ? (
          <p className="muted empty">Your generations will show up here with live progress.</p>
        ) : (
          <ul className="job-list">
            {recent.map((j) => (
              <JobCard key={j.id} job={j} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
