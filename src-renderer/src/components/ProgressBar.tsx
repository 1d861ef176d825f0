import { percent } from '../lib/format.ts';

/** A labelled progress bar; screen readers hear "label: 40%". */
export function ProgressBar({
  step,
  total,
  label,
  text,
}: {
  step: number;
  total: number;
  label: string;
  /** What screen readers hear instead of "Step n of m" (a batch says which image). */
  text?: string;
}) {
  const pct = percent(step, total);
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct}
      aria-valuetext={total > 0 ? (text ?? `Step ${step} of ${total}`) : 'Waiting'}
    >
      <div className="progress-fill" style={{ width: `${pct}%` }} />
    </div>
  );
}
