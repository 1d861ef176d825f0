import { PLANS, SCHEDULERS, type AppError, type RouteDecision, type Scheduler } from '@atelier/common';
import { useEffect, useId, useLayoutEffect, useMemo, useRef, type ReactNode } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { JobCard } from '../components/JobCard.tsx';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { FIXTURE_LABEL, modelLabel, progressLabel, vocabularyLine } from '../lib/format.ts';
import { seedFieldValue } from '../lib/generate-form.ts';
import { NATIVE_SIZE, SIZE_PRESETS } from '../lib/sizes.ts';
import { BILLING_OFF } from '../lib/billing.ts';
import { isActive, orderedJobs } from '../stores/jobs.ts';
import { useS, useStores } from '../stores/index.ts';
import { Icon } from '../components/Icon.tsx';
import { StartImagePanel } from '../components/StartImage.tsx';

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

/** Upgrade, or — on a server without billing — the plain sentence that it is not available. */
function UpgradeButton({ primary = true }: { primary?: boolean }) {
  const { account, app } = useStores();
  const billing = useS(account, (s) => s.state?.billing ?? null);
  if (billing && !billing.available) return <span className="muted small">{BILLING_OFF}</span>;
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
    <button type="button" className={`btn ${primary ? 'btn-primary' : ''}`} onClick={() => void upgrade()}>
      Upgrade
    </button>
  );
}

/** A refusal known before the click (from the route decision) or met at the click (a race): what and the way out. */
function Blocker({
  code,
  message,
  action,
  quotaLeft,
}: {
  code: string;
  message: string;
  action: RouteDecision['action'];
  quotaLeft: number | null;
}) {
  const { generate, app } = useStores();
  const title =
    code === 'QUOTA_EXCEEDED'
      ? quotaLeft === 0
        ? 'Cloud quota reached. '
        : 'Not enough cloud images left. '
      : code === 'PLAN_REQUIRED'
        ? 'Not on your plan. '
        : code === 'ENGINE_MEMORY_INSUFFICIENT'
          ? 'Too big for this computer. '
          : '';
  return (
    <div className="callout callout-warning" role="alert" data-testid="blocker">
      <p>
        <strong>{title}</strong>
        {message}
      </p>
      <div className="row">
        {action === 'run_local' && (
          <button
            type="button"
            className="btn btn-primary"
            onClick={() => void generate.getState().runInstead('local')}
          >
            Run on this computer instead
          </button>
        )}
        {action === 'run_cloud' && (
          <button
            type="button"
            className="btn btn-primary"
            onClick={() => void generate.getState().runInstead('cloud')}
          >
            Run in the cloud instead
          </button>
        )}
        {(code === 'QUOTA_EXCEEDED' || code === 'PLAN_REQUIRED') && <UpgradeButton primary={action === null} />}
        {(code === 'AUTH_REQUIRED' || action === 'sign_in') && (
          <button type="button" className="btn btn-primary" onClick={() => app.getState().navigate('account')}>
            Sign in
          </button>
        )}
        {action === 'install_model' && (
          <button type="button" className="btn" onClick={() => app.getState().navigate('settings')}>
            Install a model
          </button>
        )}
      </div>
    </div>
  );
}

function SubmitBlocker({ error, quotaLeft }: { error: AppError; quotaLeft: number | null }) {
  return <Blocker code={error.code} message={error.userMessage} action={null} quotaLeft={quotaLeft} />;
}

/** Asked once, when Automatic could move a run from this (GPU-less) computer to the metered cloud. */
function AskCloud({ cost }: { cost: string | null }) {
  const { generate } = useStores();
  return (
    <div className="callout" role="group" aria-label="Use Atelier Cloud for Automatic runs?" data-testid="ask-cloud">
      <p>
        <strong>Use Atelier Cloud for Automatic runs?</strong> This computer has no usable GPU. Automatic can send runs
        to Atelier Cloud, which is fast but counts against your monthly cloud images
        {cost ? ` (this run ${cost})` : ''}. Until you choose, Automatic runs here for free.
      </p>
      <div className="row">
        <button type="button" className="btn btn-primary" onClick={() => void generate.getState().answerCloud(true)}>
          Use the cloud
        </button>
        <button type="button" className="btn" onClick={() => void generate.getState().answerCloud(false)}>
          Keep on this computer
        </button>
      </div>
    </div>
  );
}

/**
 * The newest active job in one line — or, once it is over, how the last run you submitted ended —
 * for the sticky footer: feedback in sight at every window size.
 */
function LatestProgress() {
  const { jobs, generate, gallery, app } = useStores();
  const lastId = useS(generate, (s) => s.lastSubmitted[0]?.id ?? null);
  const job = useS(jobs, (s) => orderedJobs(s.jobs).find((j) => isActive(j)) ?? (lastId ? s.jobs[lastId] : undefined));
  const progress = useS(jobs, (s) => (job ? s.progress[job.id] : undefined));
  if (!job) return null;
  const step = progress?.step ?? job.step;
  const total = progress?.total ?? job.total;
  const text =
    job.state === 'running'
      ? progressLabel(step, total, job.request.count, progress?.decode)
      : job.state === 'waiting_online'
        ? 'Waiting for a connection'
        : job.state === 'queued'
          ? 'Queued'
          : job.state === 'succeeded'
            ? `Done: ${job.imageIds.length} image${job.imageIds.length === 1 ? '' : 's'}`
            : job.state === 'failed'
              ? `Failed: ${job.error?.message ?? 'see the Queue'}`
              : 'Canceled';
  return (
    <div className="latest-progress" data-testid="latest-progress">
      <span className={`badge badge-${job.target}`}>{job.target === 'cloud' ? 'Cloud' : 'Local'}</span>
      <span className="latest-progress-text" aria-live="polite" title={text}>
        {text}
      </span>
      {job.state === 'running' && (
        <ProgressBar step={step} total={total} label="Progress of the latest job" text={text} />
      )}
      {job.state === 'succeeded' && job.imageIds[0] && (
        <button
          type="button"
          className="btn btn-link"
          onClick={() => {
            gallery.getState().open(job.imageIds[0]!);
            app.getState().navigate('gallery');
          }}
        >
          View
        </button>
      )}
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
  const modelsLoaded = useS(settings, (s) => s.modelsLoaded);
  const modelsError = useS(settings, (s) => s.modelsError);
  const defaultModelId = useS(settings, (s) => s.settings?.defaultModel ?? null);
  const defaultModel = models.find((m) => m.id === defaultModelId) ?? models.find((m) => m.isDefault);
  const accountState = useS(account, (s) => s.state);
  const lastRunSeed = useS(jobs, (s) => {
    const last = generate.getState().lastSubmitted[0];
    return last ? (s.jobs[last.id]?.seed ?? null) : null;
  });
  useS(generate, (s) => s.lastSubmitted);
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

  // Not before the models are known: the default model decides the size (see the layout effect below).
  const submit = () => {
    if (modelsLoaded) void generate.getState().submit();
  };
  const willRunInCloud = decision?.target === 'cloud';
  const plan = accountState?.signedIn ? accountState.plan : null;
  const usage = accountState?.usage ?? null;
  const quotaLeft = usage ? Math.max(0, usage.limit - usage.used) : null;
  // Cloud runs: the cloud's own models, those the plan does not include marked and not offered.
  const cloudModels = willRunInCloud && plan ? (accountState?.cloudModels ?? []) : [];
  const offPlan = (planIds: readonly string[]) => plan !== null && !planIds.includes(plan);
  const selected = models.find((m) => m.id === form.model) ?? (form.model ? undefined : defaultModel);
  const blocked = decision?.blocked ?? null;
  const nativeSize = selected?.nativeSize ?? null;
  // A model trained at one size (the demo model: 64 × 64) draws best there: choosing it selects that size;
  // leaving it for an open model goes back to the usual 512 × 512. A layout effect, so the size is
  // set before the first paint that enables Generate: no click can land in between.
  const sizedFor = useRef<string | null>(null);
  useLayoutEffect(() => {
    const modelId = selected?.id ?? null;
    if (modelId === null || modelId === sizedFor.current) return;
    sizedFor.current = modelId;
    const { setSizePreset, form: current } = generate.getState();
    if (nativeSize) setSizePreset(NATIVE_SIZE, nativeSize);
    else if (current.sizePreset === NATIVE_SIZE) setSizePreset('512x512');
  }, [generate, selected?.id, nativeSize]);

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
              onChange={(e) => generate.getState().setSizePreset(e.target.value, nativeSize)}
            >
              {nativeSize && (
                <option value={NATIVE_SIZE}>
                  {nativeSize.width} × {nativeSize.height} (this model's size)
                </option>
              )}
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
              cloudModels.some((m) => offPlan(m.plans)) ? (
                <>
                  Models marked “needs {PLANS.pro.name}” are not on your {plan ? PLANS[plan].name : ''} plan.{' '}
                  <UpgradeButton primary={false} />
                </>
              ) : selected?.fixture ? (
                <span data-testid="fixture-note">{FIXTURE_LABEL}. Install a real model in Settings → Models.</span>
              ) : selected && (selected.description || vocabularyLine(selected.vocabulary)) ? (
                <span data-testid="model-description">
                  {selected.description}
                  {vocabularyLine(selected.vocabulary) ? ` Knows ${vocabularyLine(selected.vocabulary)}.` : ''}
                </span>
              ) : undefined
            }
          >
            <select
              id={id('model')}
              value={form.model}
              aria-invalid={!!errors.model}
              aria-describedby={describedBy(id('model'), errors.model)}
              onChange={(e) => update({ model: e.target.value })}
            >
              {cloudModels.length > 0 ? (
                <>
                  <option value="">Default cloud model</option>
                  {cloudModels
                    .filter((m) => !m.default)
                    .map((m) => (
                      <option key={m.id} value={m.id} disabled={offPlan(m.plans)}>
                        {offPlan(m.plans)
                          ? `${m.name} — needs ${m.plans.map((p) => PLANS[p].name).join(' or ')}`
                          : m.name}
                      </option>
                    ))}
                </>
              ) : (
                <>
                  <option value="">
                    {defaultModel ? `Default model (${modelLabel(defaultModel)})` : 'Default model'}
                  </option>
                  {models.map((m) => (
                    <option key={m.id} value={m.id}>
                      {modelLabel(m)}
                    </option>
                  ))}
                </>
              )}
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
            hint={
              form.seedLocked
                ? 'Locked: every run uses this seed.'
                : `Random: each run picks a new seed.${lastRunSeed !== null ? ` The last run used ${lastRunSeed}; lock to keep it.` : ''}`
            }
          >
            <div className="row">
              <input
                id={id('seed')}
                type="text"
                inputMode="numeric"
                placeholder="random"
                value={seedFieldValue(form)}
                aria-invalid={!!errors.seed}
                aria-describedby={describedBy(id('seed'), errors.seed)}
                onChange={(e) => update({ seed: e.target.value.trim(), seedLocked: e.target.value.trim() !== '' })}
                className="grow"
              />
              <button
                type="button"
                className={`btn btn-icon ${form.seedLocked ? 'btn-pressed' : ''}`}
                aria-pressed={form.seedLocked}
                aria-label="Lock seed"
                title={form.seedLocked ? 'Unlock seed' : 'Lock seed'}
                onClick={() => generate.getState().toggleSeedLock(lastRunSeed)}
              >
                <Icon name={form.seedLocked ? 'lock' : 'unlock'} />
              </button>
              <button
                type="button"
                className="btn btn-icon"
                aria-label="New random seed"
                title="Pick a new random seed and lock it"
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
                {decision.warning && !decision.blocked && <p className="warning-text">{decision.warning}</p>}
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

        <StartImagePanel width={form.width} height={form.height} />
        {errors._ && (
          <p className="error-text" role="alert">
            {errors._}
          </p>
        )}
        {!modelsLoaded &&
          (modelsError ? (
            <p className="error-text" role="alert" data-testid="models-error">
              {modelsError}{' '}
              <button
                type="button"
                className="btn btn-link"
                onClick={() =>
                  void settings
                    .getState()
                    .load()
                    .catch(() => undefined)
                }
              >
                Try again
              </button>
            </p>
          ) : (
            <p className="muted small" aria-live="polite" data-testid="models-loading">
              Loading your models…
            </p>
          ))}
        {/* Sticks to the bottom of the window: Generate, why it is disabled and the way out,
            and the latest job's progress stay in sight at every window size. */}
        <div className="form-footer">
          {decision?.askCloud && <AskCloud cost={decision.cost} />}
          {blocked && decision ? (
            <Blocker
              code={blocked}
              message={decision.warning ?? 'This run cannot start as it stands.'}
              action={decision.action}
              quotaLeft={quotaLeft}
            />
          ) : (
            blocker && <SubmitBlocker error={blocker} quotaLeft={quotaLeft} />
          )}
          <div className="form-actions">
            <LatestProgress />
            <button
              type="submit"
              className="btn btn-primary btn-large"
              disabled={submitting || blocked !== null || !modelsLoaded}
              aria-busy={submitting || !modelsLoaded}
              aria-keyshortcuts="Control+Enter Meta+Enter"
              title={blocked ? 'See the message above' : !modelsLoaded ? 'Waiting for the list of models' : undefined}
            >
              Generate
            </button>
          </div>
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
